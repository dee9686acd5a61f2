"""The running quarter-hour of the capacity tariff, live (docs/design.md §8, README "Capacity now and the
peak guard"). Pure: no I/O, no clock. ``store`` reads the inputs; query and notify both call
``running_quarter``, so ``capacity/now`` and a warning always agree.

The running quarter is the one holding the device's newest good reading: by §8 a quarter is completed
once a later one has a reading, so the newest reading's quarter is exactly the one not yet counted.

- ``energy_kwh``: import counter at the newest reading − the counter at the quarter's start, interpolated
  between the last good reading before the start and the first at or after it (held at the first one
  when there is none before, or the one before is of another counter epoch: §6).
- ``kw_so_far = energy_kwh × 4``: the quarter's demand if nothing more were drawn (the least it ends at).
- ``projected_kw = (energy_kwh + max(power_w, 0) / 1000 × remaining_h) × 4``: the present load continues
  to the quarter's end (export never lowers demand).
- ``threshold_kw``: the device's ``cap_kw`` when configured, else max(month_peak_kw, 2.5 kW floor).
- ``headroom_kw = threshold_kw − projected_kw`` (negative: heading over).
- ``extra_cost_eur = max(0, projected_kw − max(month_peak_kw, 2.5)) × price / 12``: a month's counted peak
  is one of the 12 in the rolling average for the next 12 months, so a rise of Δ kW in it costs
  Δ / 12 kW of billed average for 12 months: Δ × price_per_kW_year / 12 in all.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from p1_schema.capacity import QUARTER_S

# The Flemish capacity tariff's minimum monthly peak (kW): a month below it counts as 2.5 kW.
FLOOR_KW: Final = 2.5
_QUARTER: Final = timedelta(seconds=QUARTER_S)


@dataclass(frozen=True, slots=True)
class Reading:
    """A good reading: its time (aware), the import counter (kWh) and the net power (W, import > 0)."""

    ts: datetime
    import_kwh: float
    power_w: float


@dataclass(frozen=True, slots=True)
class CounterPoint:
    """A good reading's import counter (kWh) at ``ts``, with its counter epoch (§6) when known."""

    ts: datetime
    import_kwh: float
    epoch: int | None = None


@dataclass(frozen=True, slots=True)
class QuarterNow:
    """The running quarter (binding names: the ``CapacityNow`` answer). kW to 3 decimals, kWh to 6,
    euros to the cent; times are UTC."""

    quarter_start: datetime
    quarter_end: datetime
    elapsed_s: float
    energy_kwh: float
    kw_so_far: float
    power_w: float
    projected_kw: float
    month_peak_kw: float | None
    threshold_kw: float
    headroom_kw: float
    extra_cost_eur: float
    as_of: datetime


def _r(value: float, digits: int) -> float:
    """Rounded, and never ``-0.0`` (a headroom of exactly nothing reads 0.0)."""
    return round(value, digits) + 0.0


def quarter_of(ts: datetime) -> datetime:
    """The UTC quarter holding ``ts`` (every zone's offset in use is whole quarters: §7)."""
    seconds = ts.timestamp()
    return datetime.fromtimestamp(seconds - seconds % QUARTER_S, UTC)


def counter_at(boundary: datetime, before: CounterPoint | None, after: CounterPoint | None) -> float | None:
    """The import counter at ``boundary`` (§6): interpolated between the last reading before it and the
    first at or after it when both are of one epoch; else held at the first one after (an epoch's counter
    is never compared with another's); else None (no reading at or after the boundary)."""
    if after is None:
        return None
    if before is None or before.epoch != after.epoch or after.ts <= boundary:
        return after.import_kwh
    span = (after.ts - before.ts).total_seconds()
    part = (boundary - before.ts).total_seconds()
    return before.import_kwh + (after.import_kwh - before.import_kwh) * part / span


def counted_peak_kw(
    ours_kw: float | None, ours_quarters: int, expected_quarters: int, meter_kw: float | None
) -> float | None:
    """The month's peak so far as the ledger counts it (``p1_query.capacity``, §8): ours when our
    completed quarters cover the month up to the running quarter (or the meter reported nothing), else
    the peak the meter reported for the month."""
    ours_cover = expected_quarters == 0 or 0 < expected_quarters <= ours_quarters
    if ours_kw is not None and (meter_kw is None or ours_cover):
        return ours_kw
    return meter_kw if meter_kw is not None else ours_kw


def counted_kw(month_peak_kw: float | None) -> float:
    """What the month counts in the rolling average so far: its peak, at least the floor."""
    return max(month_peak_kw if month_peak_kw is not None else 0.0, FLOOR_KW)


def peak_rise_eur(new_kw: float, month_peak_kw: float | None, price_eur_per_kw_year: float) -> float:
    """What a quarter of ``new_kw`` adds to the bill: the rise of the month's counted peak × price ÷ 12
    (the month is one of the 12 the rolling average takes, for the 12 months it stays in the window),
    half-up to the cent of the product of the figures shown (kW to 3 decimals: ``p1_query.capacity``)."""
    rise = max(0.0, round(new_kw, 3) - round(counted_kw(month_peak_kw), 3))
    product = Decimal(repr(round(rise, 3))) * Decimal(repr(price_eur_per_kw_year)) / 12
    return float(product.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def running_quarter(
    *,
    start_kwh: float,
    newest: Reading,
    month_peak_kw: float | None,
    cap_kw: float | None,
    price_eur_per_kw_year: float,
) -> QuarterNow:
    """The running quarter of ``newest``'s quarter, from the import counter at the quarter's start
    (``counter_at``), the newest good reading, the month's counted peak of completed quarters
    (``counted_peak_kw``; None: no quarter and no meter peak yet), the device's cap (None: none
    configured) and the capacity price (€/kW/year)."""
    start = quarter_of(newest.ts)
    end = start + _QUARTER
    elapsed = (newest.ts - start).total_seconds()
    remaining_h = (QUARTER_S - elapsed) / 3600.0
    energy = max(0.0, newest.import_kwh - start_kwh)
    projected = (energy + max(newest.power_w, 0.0) / 1000.0 * remaining_h) * 4
    threshold = cap_kw if cap_kw is not None else counted_kw(month_peak_kw)
    return QuarterNow(
        quarter_start=start,
        quarter_end=end,
        elapsed_s=_r(elapsed, 3),
        energy_kwh=_r(energy, 6),
        kw_so_far=_r(energy * 4, 3),
        power_w=newest.power_w,
        projected_kw=_r(projected, 3),
        month_peak_kw=None if month_peak_kw is None else _r(month_peak_kw, 3),
        threshold_kw=_r(threshold, 3),
        headroom_kw=_r(threshold - projected, 3),
        extra_cost_eur=peak_rise_eur(projected, month_peak_kw, price_eur_per_kw_year),
        as_of=newest.ts.astimezone(UTC),
    )
