"""The Flemish capacity tariff ledger (DESIGN §7; the README has every rule with a worked example).

Quarter-hour demand (kW) = the offtake energy of a fixed clock quarter × 4, taken, in order of preference,
from (1) the meter's own running quarter average ``avg_power_15m_w`` at the end of the quarter, (2) the
import counter interpolated at the quarter's ends, (3) the mean of the positive power readings. Export
never lowers it. The month's peak is its highest quarter; the billing basis is the mean of the monthly
peaks, each at least 2.5 kW, of the months with data among the asked month and the 11 before it.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

from p1_contracts import timerange
from p1_contracts.models import Capacity, CapacityMonth, Quarter
from p1_servicekit.errors import FieldError, Unprocessable

from .buckets import month_bounds
from .store import QuarterRow

QUARTER_S: Final = 900
FLOOR_KW: Final = 2.5
TOP_QUARTERS: Final = 5
# The meter's running average counts as the quarter's when its last reading is this close to the end.
METER_AVG_MAX_GAP_S: Final = 60.0
DIFFERS_RATIO: Final = 0.02

# Matched whole (fullmatch): ``$`` would also accept a final newline. The years are timerange's.
_MONTH: Final = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")

# "sql": computed by store.QUARTER_DEMAND_SQL, which applies the same three rules in the database.
Method = Literal["meter_avg", "counter", "mean_power", "sql"]


@dataclass(frozen=True, slots=True)
class QuarterDemand:
    start: float  # UTC seconds
    kw: float
    method: Method


def quarter_demands(rows: Sequence[QuarterRow], origin: float, count: int) -> list[QuarterDemand]:
    """Demand of each quarter ``origin + 900 j`` (0 ≤ j < count) that has readings.

    The reference statement of the rules. The service runs the same rules in SQL
    (``store.QUARTER_DEMAND_SQL``) so that a year of quarters stays in the database; a test holds the
    two equal on every test scene.

    One pass over the rows in time order: the readings that bracket a quarter's ends are the last of
    the row before and the first of the row after, so no search is needed.
    """
    out = []
    k, total = 0, len(rows)
    while k < total:
        j = rows[k].i
        m = k
        while m < total and rows[m].i == j:
            m += 1
        if 0 <= j < count:
            prev = rows[k - 1] if k > 0 else None
            nxt = rows[m] if m < total else None
            demand = _demand(rows[k:m], prev, nxt, origin + QUARTER_S * j)
            if demand is not None:
                out.append(demand)
        k = m
    return out


def _demand(
    quarter: Sequence[QuarterRow], prev: QuarterRow | None, nxt: QuarterRow | None, start: float
) -> QuarterDemand | None:
    end = start + QUARTER_S
    n = sum(r.n for r in quarter)
    if n == 0:
        return None
    last = max(quarter, key=lambda r: r.last_ts)
    if last.avg_power_15m_w is not None and end - last.last_ts <= METER_AVG_MAX_GAP_S:
        return QuarterDemand(start, max(0.0, last.avg_power_15m_w) / 1000.0, "meter_avg")
    # A quarter with two epochs (meter replaced in it) is bracketed by neither: no counter delta.
    if len(quarter) == 1:
        energy = _counter_delta(quarter[0], prev, nxt, start, end)
        if energy is not None:
            return QuarterDemand(start, energy * 4.0, "counter")
    positive = sum(r.power_import_sum for r in quarter)
    return QuarterDemand(start, positive / n / 1000.0, "mean_power")


def _counter_delta(
    row: QuarterRow, prev: QuarterRow | None, nxt: QuarterRow | None, start: float, end: float
) -> float | None:
    """C(end) − C(start) when readings of the row's epoch lie at or before start and after end."""
    if row.import_first is None or row.import_last is None:
        return None
    if row.first_ts <= start:
        c0 = row.import_first
    elif prev is not None and prev.epoch == row.epoch and prev.import_last is not None:
        c0 = _lerp(prev.last_ts, prev.import_last, row.first_ts, row.import_first, start)
    else:
        return None
    if nxt is None or nxt.epoch != row.epoch or nxt.import_first is None:
        return None
    c1 = _lerp(row.last_ts, row.import_last, nxt.first_ts, nxt.import_first, end)
    return max(0.0, c1 - c0)


def _lerp(t0: float, v0: float, t1: float, v1: float, t: float) -> float:
    return v1 if t1 <= t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def month_label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def months_back(year: int, month: int, count: int) -> list[tuple[int, int]]:
    """``count`` months ending with (year, month), oldest first; none before the supported range (the
    window of 2000-01 is that month alone): a reading of 2000-01-01 can lie in a local 1999-12 west of UTC,
    a month the contract cannot name (``CapacityMonth.month``), so it counts in no ledger."""
    out = []
    y, m = year, month
    for _ in range(count):
        if not timerange.month_in_range(y):
            break
        out.append((y, m))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]


def window(year: int, month: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of the month 11 before, end of the asked month) in UTC."""
    first = months_back(year, month, 12)[0]
    return month_bounds(*first, tz)[0], month_bounds(year, month, tz)[1]


def _r3(x: float) -> float:
    return round(x, 3)


def ledger(
    *,
    device_id: str,
    year: int,
    month: int,
    tz: ZoneInfo,
    tz_name: str,
    demands: Sequence[QuarterDemand],
    meter_peak_kw: float | None,
    price_eur_per_kw_year: float,
) -> Capacity:
    """The capacity answer from the quarter demands of the 12-month window (at least each month's
    top ``TOP_QUARTERS``, in time order) and the meter's own peak of the asked month."""
    months = months_back(year, month, 12)
    bounds = [month_bounds(y, m, tz) for y, m in months]

    # Local months start at local midnight, a UTC quarter in every zone in use, so no quarter straddles two.
    per_month: list[list[QuarterDemand]] = [[] for _ in months]
    limits = [(a.timestamp(), b.timestamp()) for a, b in bounds]
    k = 0
    for d in demands:
        while k < len(limits) and d.start >= limits[k][1]:
            k += 1
        if k < len(limits) and d.start >= limits[k][0]:
            per_month[k].append(d)

    month_rows = []
    for (y, m), quarters in zip(months, per_month, strict=True):
        if quarters:
            peak = max(q.kw for q in quarters)
            month_rows.append(
                CapacityMonth(month=month_label(y, m), peak_kw=_r3(peak), counted_kw=_r3(max(peak, FLOOR_KW)))
            )

    asked = per_month[-1]
    # Highest first; of equal quarters the earlier one (the one a grid operator would name).
    top = sorted(asked, key=lambda q: (-q.kw, q.start))[:TOP_QUARTERS]
    peak_q = top[0] if top else None

    peak_kw = _r3(peak_q.kw) if peak_q else None
    differs = (
        peak_kw is not None
        and meter_peak_kw is not None
        and abs(peak_kw - meter_peak_kw) > DIFFERS_RATIO * max(meter_peak_kw, 1e-9)
    )
    counted = [r.counted_kw for r in month_rows]
    rolling = _r3(sum(counted) / len(counted)) if counted else None
    billable = rolling if rolling is not None else FLOOR_KW

    def local(ts: float) -> datetime:
        return datetime.fromtimestamp(ts, UTC).astimezone(tz)

    return Capacity(
        device_id=device_id,
        month=month_label(year, month),
        tz=tz_name,
        peak_kw=peak_kw,
        peak_start=local(peak_q.start) if peak_q else None,
        meter_peak_kw=meter_peak_kw,
        meter_peak_differs=differs,
        top_quarters=[Quarter(start=local(q.start), kw=_r3(q.kw)) for q in top],
        months=month_rows,
        rolling_12m_avg_kw=rolling,
        billable_kw=billable,
        price_eur_per_kw_year=price_eur_per_kw_year,
        cost_eur_per_year=round(billable * price_eur_per_kw_year, 2),
    )


def parse_month(value: str) -> tuple[int, int]:
    m = _MONTH.fullmatch(value)
    if m is None or not timerange.month_in_range(int(m.group(1))):
        raise Unprocessable(
            [
                FieldError(
                    ("query", "month"),
                    f"must be {timerange.MONTHS_DESCRIPTION}, as YYYY-MM, e.g. 2026-11",
                    "month",
                )
            ]
        )
    return int(m.group(1)), int(m.group(2))
