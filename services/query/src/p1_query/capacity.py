"""The Flemish capacity tariff ledger (docs/design.md §8; the README has every rule with a worked example).

Quarter-hour demand (kW) = the offtake energy of a fixed clock quarter × 4, taken, in order of preference,
from (1) the meter's own running quarter average ``avg_power_15m_w`` at the end of the quarter, (2) the
import counter interpolated at the quarter's ends, (3) the mean of the positive power readings
(``capacity_sql.QUARTER_DEMAND_SQL``). Export never lowers it. The month's peak is its highest quarter;
the billing basis is the mean of the monthly peaks, each at least 2.5 kW, of the months with data among
the asked month and the 11 before it. A month's peak is ours (``measured``) when our completed quarters
cover it, else the one the meter reported for it (``meter``, table ``meter_peaks``) when there is one.
"""

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Final
from zoneinfo import ZoneInfo

from p1_contracts import timerange
from p1_contracts.models import Capacity, CapacityMonth, Quarter
from p1_peakguard.quarter import FLOOR_KW, WINDOW_MONTHS, month_peak
from p1_query.buckets import month_bounds
from p1_schema.capacity import QUARTER_S
from p1_servicekit.errors import FieldError, Unprocessable

TOP_QUARTERS: Final = 5
DIFFERS_RATIO: Final = 0.02

# Matched whole (fullmatch): ``$`` would also accept a final newline. The years are timerange's.
_MONTH: Final = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")

Demand = tuple[float, float]  # (quarter start in UTC seconds, kW)


def month_label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def months_back(year: int, month: int, count: int) -> list[tuple[int, int]]:
    """``count`` months ending with (year, month), oldest first; none before the supported range (the
    window of 2000-01 is that month alone): a reading of 2000-01-01 can lie in a local 1999-12 west of UTC,
    a month the contract cannot name (``CapacityMonth.month``), so it counts in no ledger."""
    out = []
    for _ in range(count):
        if not timerange.month_in_range(year):
            break
        out.append((year, month))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def window(year: int, month: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of the month 11 before, end of the asked month) in UTC."""
    first = months_back(year, month, WINDOW_MONTHS)[0]
    return month_bounds(*first, tz)[0], month_bounds(year, month, tz)[1]


def parse_month(value: str) -> tuple[int, int]:
    found = _MONTH.fullmatch(value)
    if found is None or not timerange.month_in_range(int(found.group(1))):
        message = f"must be {timerange.MONTHS_DESCRIPTION}, as YYYY-MM, e.g. 2026-11"
        raise Unprocessable([FieldError(("query", "month"), message, "month")])
    return int(found.group(1)), int(found.group(2))


def _r3(x: float) -> float:
    return round(x, 3)


def euros(kw: float, eur_per_kw_year: float) -> float:
    """kW × €/kW/year rounded half-up to the cent, as a bill does (133.125 → 133.13). The floats' shortest
    texts are the figures the answer shows, so the product of those decimals is rounded, not of their
    binary approximations (round(2.5 * 53.25, 2) is 133.12)."""
    product = Decimal(repr(kw)) * Decimal(repr(eur_per_kw_year))
    return float(product.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _per_month(demands: Sequence[Demand], bounds: Sequence[tuple[datetime, datetime]]) -> list[list[Demand]]:
    """The demands (in time order) of each month of ``bounds``. Local months start at local midnight, a
    UTC quarter in every zone in use, so no quarter straddles two."""
    per_month: list[list[Demand]] = [[] for _ in bounds]
    limits = [(start.timestamp(), end.timestamp()) for start, end in bounds]
    index = 0
    for demand in demands:
        while index < len(limits) and demand[0] >= limits[index][1]:
            index += 1
        if index < len(limits) and demand[0] >= limits[index][0]:
            per_month[index].append(demand)
    return per_month


def _month_rows(
    months: Sequence[tuple[int, int]],
    per_month: Sequence[list[Demand]],
    complete: Sequence[bool],
    meter_kw: Mapping[str, float],
) -> list[CapacityMonth]:
    """One row per month with our quarters or the meter's peak. Ours count (``measured``) when they cover
    the month (``complete``) or the meter reported nothing for it; else the meter's (``meter``)."""
    rows = []
    for i, ((year, month), quarters) in enumerate(zip(months, per_month, strict=True)):
        label = month_label(year, month)
        meter = meter_kw.get(label)
        ours = max(kw for _, kw in quarters) if quarters else None
        found = month_peak(ours, not complete or complete[i], meter)
        if found is None:
            continue
        peak, source = found
        counted = _r3(max(peak, FLOOR_KW))
        rows.append(CapacityMonth(month=label, peak_kw=_r3(peak), counted_kw=counted, source=source))
    return rows


def expected_quarters(bounds: tuple[datetime, datetime], newest: datetime | None) -> int:
    """The quarters of a month that are over by the device's newest reading: all of a past month's, a
    running month's up to the running quarter (local months start on the UTC quarter grid)."""
    start, end = (b.timestamp() for b in bounds)
    if newest is None:
        return 0
    running = newest.timestamp() // QUARTER_S * QUARTER_S
    return max(0, int((min(end, running) - start) // QUARTER_S))


def _differs(peak_kw: float | None, meter_peak_kw: float | None) -> bool:
    if peak_kw is None or meter_peak_kw is None:
        return False
    return abs(peak_kw - meter_peak_kw) > DIFFERS_RATIO * max(meter_peak_kw, 1e-9)


def ledger(
    *,
    device_id: str,
    year: int,
    month: int,
    tz: ZoneInfo,
    tz_name: str,
    demands: Sequence[Demand],
    meter_peak_kw: float | None,
    price_eur_per_kw_year: float,
    complete: Sequence[bool] = (),
    meter_kw: Mapping[str, float] | None = None,
) -> Capacity:
    """The capacity answer from the quarter demands of the 12-month window (at least each month's
    top ``TOP_QUARTERS``, in time order), whether our quarters cover each month (``complete``, in
    window order; none given: all do), the peaks the meter reported by month label (kW) and the
    meter's own peak of the asked month from its readings."""
    months = months_back(year, month, WINDOW_MONTHS)
    per_month = _per_month(demands, [month_bounds(*year_month, tz) for year_month in months])
    month_rows = _month_rows(months, per_month, complete, meter_kw or {})
    # Highest first; of equal quarters the earlier one (the one a grid operator would name).
    top = sorted(per_month[-1], key=lambda demand: (-demand[1], demand[0]))[:TOP_QUARTERS]
    peak_kw = _r3(top[0][1]) if top else None
    counted = [row.counted_kw for row in month_rows]
    rolling = _r3(sum(counted) / len(counted)) if counted else None
    billable = rolling if rolling is not None else FLOOR_KW

    def local(seconds: float) -> datetime:  # a quarter's start is a boundary: in the zone's offset
        return datetime.fromtimestamp(seconds, UTC).astimezone(tz)

    return Capacity(
        device_id=device_id,
        month=month_label(year, month),
        tz=tz_name,
        peak_kw=peak_kw,
        peak_start=local(top[0][0]) if top else None,
        meter_peak_kw=meter_peak_kw,
        meter_peak_differs=_differs(peak_kw, meter_peak_kw),
        top_quarters=[Quarter(start=local(start), kw=_r3(kw)) for start, kw in top],
        months=month_rows,
        rolling_12m_avg_kw=rolling,
        billable_kw=billable,
        price_eur_per_kw_year=price_eur_per_kw_year,
        cost_eur_per_year=euros(billable, price_eur_per_kw_year),
    )
