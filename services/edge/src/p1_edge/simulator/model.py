"""The smart meter's state: counters that integrate the profile's power exactly, second by second.

Power is constant during each whole second (as the meter's 1 s DSMR telegram reports it), so the
energy of second ``s`` is ``P(s) × 1 s``. The counters are integer sums of that in joules (and
millilitres for gas and water): exact, with no float drift. A reading shows each register as the
meter's display does, in whole watt-hours (litres) rounded down, and its totals as the sum of the
registers, so registers always add up to the totals.

The model starts integrating at the last whole hour before its start, so the first quarter-hour it
reports is complete and gas and water have a captured value from the start.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from p1_edge.simulator.flavours import FLAVOURS, Flavour
from p1_edge.simulator.peaks import QUARTER_S, PeakRegister, QuarterPeak, month_bounds, month_of
from p1_edge.simulator.profiles import Load, Profile
from p1_edge.simulator.reading import (
    Capacity,
    Mbus,
    MbusKind,
    MeterReading,
    MonthPeak,
    Peak,
    Phase,
    PowerFailure,
)

MAX_CATCH_UP_S = 7 * 86400  # after a longer pause the meter is taken to have been without power
WARM_UP_ALIGN_S = 3600  # a multiple of the quarter and of every M-Bus capture period
FAILURE_LOG_MAX = 10  # DSMR keeps the last 10 long power failures
NOMINAL_DV = 2300  # 230.0 V: the current of a meter that reports no voltage is computed at this
Which = Literal["electricity", "gas", "water"]
METERS: tuple[Which, ...] = ("electricity", "gas", "water")


@dataclass
class GridEvents:
    """Counters of the meter's power-quality log; the start values are the DSMR documentation's."""

    power_failures: int = 6
    long_power_failures: int = 3
    failure_log: list[tuple[int, int]] = field(default_factory=list)  # (end second, duration s)
    sags: list[int] = field(default_factory=lambda: [3, 2, 2])
    swells: list[int] = field(default_factory=lambda: [1, 1, 1])


@dataclass
class MeterState:
    import_j: list[int] = field(default_factory=lambda: [10830511 * 3600, 2948827 * 3600])
    export_j: list[int] = field(default_factory=lambda: [1285951 * 3600, 2876510 * 3600])
    gas_ml: int = 2569646 * 1000
    water_ml: int = 123456 * 1000
    captured: dict[MbusKind, tuple[int, int]] = field(default_factory=dict)  # (second, ml)
    second: int = 0  # the last integrated second (epoch)
    load: Load = field(default_factory=lambda: Load(0, 0, 0, 0, 0))
    events: GridEvents = field(default_factory=GridEvents)
    generation: dict[Which, int] = field(default_factory=lambda: dict.fromkeys(METERS, 0))


class MeterModel:
    def __init__(
        self,
        profile: Profile,
        tz: ZoneInfo,
        start: datetime | None = None,
        *,
        flavour: Flavour = FLAVOURS[("be", 5)],
        installed: datetime | None = None,
    ) -> None:
        self.profile = profile
        self.tz = tz
        self.flavour = flavour
        now = int((start or datetime.now(UTC)).timestamp())
        begin = now - now % WARM_UP_ALIGN_S
        if installed is not None:
            if installed.timestamp() > now:
                raise ValueError("the meter cannot be installed after the simulation starts")
            begin = max(begin, int(installed.timestamp()))
        self.state = MeterState(second=begin)
        self.state.events.failure_log.append((now - 30 * 86400, 2451))
        self.peaks = PeakRegister(
            profile, tz, begin - begin % QUARTER_S, int(installed.timestamp()) if installed else None
        )
        self._capture(begin)
        self.advance_to(now - now % flavour.telegram_period_s)  # the last telegram before ``start``

    def advance_to(self, second: int) -> None:
        st = self.state
        if second - st.second > MAX_CATCH_UP_S:
            self._outage(st.second, second - MAX_CATCH_UP_S)
        while st.second < second:
            st.second += 1
            self._step(st.second)

    def now(self, at: datetime | None = None) -> MeterState:
        self.advance_to(int((at or datetime.now(UTC)).timestamp()))
        return self.state

    def step_seconds(self, seconds: int) -> None:
        """Test hook: run the model ``seconds`` ahead of its own clock."""
        self.advance_to(self.state.second + seconds)

    def _step(self, second: int) -> None:
        """Integrates second ``second - 1 .. second`` with the power the profile gives at its start."""
        st = self.state
        local = datetime.fromtimestamp(second - 1, self.tz)
        load = self.profile.load(local)
        register = self.flavour.tariff_at(local) - 1
        power = load.total
        if power >= 0:
            st.import_j[register] += power
        else:
            st.export_j[register] -= power
        self.peaks.add(max(power, 0))
        st.gas_ml += load.gas_ml_s
        st.water_ml += load.water_ml_s
        st.load = load
        if second % QUARTER_S == 0:
            self.peaks.close_quarter(second)
        if second % self.flavour.mbus_period_s == 0:
            self._capture(second)

    def _capture(self, second: int) -> None:
        self.state.captured["gas_meter"] = (second, self.state.gas_ml)
        self.state.captured["water_meter"] = (second, self.state.water_ml)

    def _outage(self, last: int, back: int) -> None:
        """A pause too long to integrate is a long power failure: nothing is metered meanwhile."""
        back -= back % WARM_UP_ALIGN_S
        events = self.state.events
        events.power_failures += 1
        events.long_power_failures += 1
        events.failure_log = [*events.failure_log, (back, back - last)][-FAILURE_LOG_MAX:]
        self.state.second = back
        self.peaks.restart(back, installed=None)

    def replace(self, meters: Iterable[Which] = METERS) -> None:
        """New meters: their counters start again at zero and their equipment ids change."""
        st = self.state
        for which in set(meters):
            st.generation[which] += 1
            if which == "electricity":
                st.import_j, st.export_j, st.events = [0, 0], [0, 0], GridEvents(0, 0, [], [0] * 3, [0] * 3)
                self.peaks.restart(st.second, installed=st.second)
            elif which == "gas":
                st.gas_ml = 0
                st.captured["gas_meter"] = (st.second, 0)
            else:
                st.water_ml = 0
                st.captured["water_meter"] = (st.second, 0)

    def grid_event(self, kind: str, phase: int = 1, duration_s: int = 0) -> None:
        """Counts a voltage sag or swell on ``phase``, or a (long) power failure in any phase."""
        events = self.state.events
        if kind == "sag":
            events.sags[phase - 1] += 1
        elif kind == "swell":
            events.swells[phase - 1] += 1
        else:
            events.power_failures += 1
            if kind == "long_power_failure":
                events.long_power_failures += 1
                entry = (self.state.second, duration_s)
                events.failure_log = [*events.failure_log, entry][-FAILURE_LOG_MAX:]

    def unique_id(self, which: Which = "electricity") -> str:
        """Hex of the meter's ASCII equipment id, as the telegram and HomeWizard give it."""
        letter = {"electricity": "E", "gas": "G", "water": "W"}[which]
        return f"SIM-{letter}-{self.state.generation[which]:08d}".encode().hex().upper()

    def local(self, second: int) -> datetime:
        return datetime.fromtimestamp(second, self.tz)

    def reading(self) -> MeterReading:
        """The telegram of the current second."""
        st = self.state
        phases = self._phases()
        events = st.events
        return MeterReading(
            flavour=self.flavour,
            second=st.second,
            at=self.local(st.second),
            unique_id=self.unique_id(),
            tariff=self.flavour.tariff_at(self.local(st.second)),
            import_wh=(st.import_j[0] // 3600, st.import_j[1] // 3600),
            export_wh=(st.export_j[0] // 3600, st.export_j[1] // 3600),
            phases=phases,
            frequency_chz=self._frequency_chz() if self.flavour.frequency else None,
            power_failures=events.power_failures,
            long_power_failures=events.long_power_failures,
            failure_log=tuple(PowerFailure(self.local(end), d) for end, d in events.failure_log),
            sags=tuple(events.sags[: len(phases)]),
            swells=tuple(events.swells[: len(phases)]),
            capacity=self._capacity() if self.flavour.capacity else None,
            mbus=self._mbus(),
        )

    def _phases(self) -> tuple[Phase, ...]:
        st = self.state
        powers = [st.load.l1, st.load.l2, st.load.l3] if self.profile.three_phase else [st.load.l1]
        out = []
        for n, watts in enumerate(powers, start=1):
            ripple = 0 if self.profile.quiet_grid else round(30 * math.sin(st.second / 600 + n))
            dv = NOMINAL_DV + ripple if self.flavour.voltages else None
            out.append(Phase(n, watts, dv, self._current(watts, dv or NOMINAL_DV)))
        return tuple(out)

    def _frequency_chz(self) -> int:
        return 5000 if self.profile.quiet_grid else 5000 + round(3 * math.sin(self.state.second / 47))

    def _current(self, watts: int, dv: int) -> Decimal:
        """|P| / V at the flavour's resolution, signed like the power (as HomeWizard reports it)."""
        step = Decimal(1).scaleb(-self.flavour.current_decimals)
        amps = (Decimal(abs(watts) * 10) / Decimal(dv)).quantize(step)
        return -amps if watts < 0 else amps

    def _capacity(self) -> Capacity:
        now = self.state.second
        month = month_of(now, self.tz)
        peak = self.peaks.month_peak(month)
        if peak is None:  # the register reads 0 from the month's start until a quarter completes
            peak = QuarterPeak(0, month_bounds(month, self.tz)[0])
        return Capacity(self.peaks.average_w(now), self._peak(peak))

    def _peak(self, peak: QuarterPeak) -> Peak:
        return Peak(peak.w, self.local(peak.end))

    def history(self) -> tuple[MonthPeak, ...]:
        """``0-0:98.1.0``: the last 13 completed months' peaks, oldest first (empty unless Belgian)."""
        if not self.flavour.capacity:
            return ()
        entries = self.peaks.history(self.state.second)
        return tuple(MonthPeak(self.local(month_bounds(m, self.tz)[1]), self._peak(p)) for m, p in entries)

    def _mbus(self) -> tuple[Mbus, ...]:
        kinds: list[tuple[MbusKind, Which]] = []
        if self.profile.has_gas:
            kinds.append(("gas_meter", "gas"))
        if self.profile.has_water:
            kinds.append(("water_meter", "water"))
        out = []
        for channel, (kind, which) in enumerate(kinds, start=1):
            second, ml = self.state.captured[kind]
            out.append(Mbus(channel, kind, self.unique_id(which), self.local(second), ml // 1000))
        return tuple(out)
