"""A simulated meter's past, as the edge would have uploaded it, computed in seconds: `make demo`'s backfill.

A year at one reading a second is 31.5 million readings, far more than a demo can send through ingest in
under a minute. So the past is read in two resolutions:

* **coarse**, up to ``fine_from``: one reading every five minutes (105,120 a year). The model integrates
  each five-minute slot at the power the profile gives in the slot's middle
  (:meth:`MeterModel.advance_coarse`), which is how the simulated meter estimates its own past quarters
  (``peaks.ESTIMATE_SLOT_S``): the history's quarter-hour peaks are the ones a live simulator reports for
  those months (``month_peak_w``, ``0-0:98.1.0``). Counters are exact sums of what is integrated and a
  reading lies on every quarter's start and end, so every energy and every quarter's demand read from the
  counters is exact, and a reading's power is its slot's, so a bucket's mean power matches its energy.
  What a slot loses is the detail inside it (a kettle's minute, the heat pump's on/off minutes, clouds).
* **fine**, from ``fine_from`` to ``end``: every second's telegram, as the live simulator serves them.

At ``end`` the history hands its :class:`Registers` to a live simulator (``p1-edge simulate --state``),
which from there integrates the same seconds: :meth:`History.follow` gives the readings it serves, so
ingest sees one meter and one counter epoch, with no jump. A history may also start from the registers
of the newest stored reading (a second `make demo`), continuing that meter.

Readings are the dicts the edge uploads (``Sample`` fields, JSON-ready), built from the model's reading
directly: the edge's own path (v1 JSON → ``meter/mapping.py`` → ``Sample``) costs ~0.1 ms a reading; a
test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from p1_edge.meter.mapping import to_meter
from p1_edge.simulator.flavours import Flavour
from p1_edge.simulator.model import MeterModel
from p1_edge.simulator.payloads import data_v1, kwh
from p1_edge.simulator.peaks import ESTIMATE_SLOT_S
from p1_edge.simulator.profiles import Profile
from p1_edge.simulator.reading import MeterReading
from p1_edge.simulator.registers import Registers

COARSE_STEP_S = ESTIMATE_SLOT_S
Sample = dict[str, object]


@dataclass(frozen=True)
class Span:
    """The history's seconds: readings after ``start`` up to ``end``, coarse before ``fine_from``."""

    start: int
    fine_from: int
    end: int

    def __post_init__(self) -> None:
        if self.fine_from % COARSE_STEP_S:
            raise ValueError(f"fine_from must be a multiple of {COARSE_STEP_S} s")
        if not self.start <= self.end or not self.fine_from <= self.end:
            raise ValueError("start and fine_from may not be after end")


def _at(second: int) -> datetime:
    return datetime.fromtimestamp(second, UTC)


def _instant(at: datetime) -> str:
    """An instant as the contract spells it (``timerange.INSTANT``): seconds, ``Z`` or the offset."""
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def sample(r: MeterReading) -> Sample:
    """The Sample the edge makes of ``r`` (what :func:`edge_sample` makes through the edge's mapping)."""
    out: Sample = {
        "ts": _instant(_at(r.second)),
        "power_w": float(r.power_w),
        "import_kwh": kwh(r.import_total_wh),
        "export_kwh": kwh(r.export_total_wh),
        "import_t1_kwh": kwh(r.import_wh[0]),
        "import_t2_kwh": kwh(r.import_wh[1]),
        "export_t1_kwh": kwh(r.export_wh[0]),
        "export_t2_kwh": kwh(r.export_wh[1]),
        "tariff": r.tariff,
    }
    for p in r.phases:
        out[f"power_l{p.n}_w"] = float(p.power_w)
        if p.voltage_dv is not None:
            out[f"voltage_l{p.n}_v"] = p.voltage_dv / 10
        out[f"current_l{p.n}_a"] = float(p.current_a)
    if r.capacity is not None:
        out["avg_power_15m_w"] = float(r.capacity.average_w)
        out["month_peak_w"] = float(r.capacity.month_peak.w)
        out["month_peak_ts"] = _instant(r.capacity.month_peak.at)
    for m in r.mbus:
        name = "gas" if m.kind == "gas_meter" else "water"
        out[f"{name}_m3"] = m.litres / 1000
        out[f"{name}_ts"] = _instant(m.captured)
        out[f"{name}_unique_id"] = m.unique_id
    out.update(_grid(r))
    return out


def _grid(r: MeterReading) -> Sample:
    """The grid's quality as the meter counts it (docs/design.md §10, "What the edge keeps")."""
    out: Sample = {"power_fail_count": r.power_failures, "long_power_fail_count": r.long_power_failures}
    if r.frequency_chz is not None:
        out["frequency_hz"] = r.frequency_chz / 100
    out.update({f"voltage_sag_l{n}_count": c for n, c in enumerate(r.sags, start=1)})
    out.update({f"voltage_swell_l{n}_count": c for n, c in enumerate(r.swells, start=1)})
    return out


class History:
    """A meter's readings after ``span.start``, oldest first; the meter starts from ``registers`` (those of
    ``span.start``) or, without, from the simulator's own first registers."""

    def __init__(
        self, profile: Profile, tz: ZoneInfo, flavour: Flavour, span: Span, registers: Registers | None = None
    ) -> None:
        self.span = span
        self.model = MeterModel(profile, tz, _at(span.start), flavour=flavour)
        if registers is not None:
            registers.apply(self.model.state)
        meter = to_meter(data_v1(self.model.reading(), "", 0))
        # the identity the edge sends with each batch: the same meter as the live simulator's
        self.meter = meter.model_dump(mode="json", exclude_none=True) if meter else None

    def readings(self, emit_from: int | None = None) -> Iterator[Sample]:
        """The readings to ``span.end``; those before ``emit_from`` are integrated but not given (a meter
        that ran while nobody read it)."""
        model, span = self.model, self.span
        emit_from = span.start if emit_from is None else emit_from
        while model.state.second % COARSE_STEP_S and model.state.second < span.end:
            yield from self._fine(model.state.second + 1, emit_from)
        while model.state.second + COARSE_STEP_S <= span.fine_from:
            model.advance_coarse(model.state.second + COARSE_STEP_S, COARSE_STEP_S)
            if model.state.second >= emit_from:
                yield sample(model.reading())
        yield from self._fine(span.end, emit_from)

    def follow(self, until: int) -> Iterator[Sample]:
        """The readings of every second after the last one given, to ``until``: the live meter's."""
        return self._fine(until, self.model.state.second)

    def registers(self) -> Registers:
        """The registers at the last reading given (what ``p1-edge simulate --state`` continues)."""
        return Registers.of(self.model.state)

    def _fine(self, until: int, emit_from: int) -> Iterator[Sample]:
        while self.model.state.second < until:
            self.model.advance_to(self.model.state.second + 1)
            if self.model.state.second >= emit_from:
                yield sample(self.model.reading())
