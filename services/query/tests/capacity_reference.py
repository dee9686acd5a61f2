"""The quarter-hour demand rules of capacity, stated in Python: the reference that the service's SQL
(``p1_schema.capacity.QUARTER_DEMAND_SQL``) is held equal to on every test scene.

Quarter-hour demand (kW) = the offtake energy of a fixed clock quarter × 4, taken, in order of preference,
from (1) the meter's own running quarter average at the end of the quarter, (2) the import counter
interpolated at the quarter's ends, (3) the mean of the positive power readings. Only completed quarters
have a demand: those with a reading of the device in a later quarter.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, NamedTuple

from p1_query.db import Conn
from p1_schema.capacity import METER_AVG_MAX_GAP_S, QUARTER_S, quarters_with_neighbours

Method = Literal["meter_avg", "counter", "mean_power"]


class QuarterRow(NamedTuple):
    """A rollup_15m row as the rules need it; times in UTC seconds. ``i`` is the quarter's index from
    the range's start (−1 for the anchor row before it)."""

    i: int
    epoch: int
    n: int
    power_import_sum: float
    first_ts: float
    last_ts: float
    import_first: float | None
    import_last: float | None
    avg_power_15m_w: float | None
    month_peak_w: float | None


@dataclass(frozen=True, slots=True)
class QuarterDemand:
    start: float  # UTC seconds
    kw: float
    method: Method


_QUARTER_COLUMNS: Final = """
    floor((extract(epoch FROM bucket) - $4::float8) / 900)::int AS i, epoch, n, power_import_sum,
    extract(epoch FROM first_ts)::float8, extract(epoch FROM last_ts)::float8,
    import_kwh_min, import_kwh_max, avg_power_15m_w, month_peak_w"""
_QUARTERS_SQL: Final = f"{quarters_with_neighbours(_QUARTER_COLUMNS)} ORDER BY 1, 2"


async def fetch_quarters(conn: Conn, device_id: str, start: datetime, end: datetime) -> list[QuarterRow]:
    """The rollup_15m rows of [start, end) (UTC quarter-aligned) and their neighbours, in time order."""
    rows = await conn.fetch(_QUARTERS_SQL, device_id, start, end, start.timestamp())
    return [QuarterRow(*row) for row in rows]


def quarter_demands(rows: Sequence[QuarterRow], origin: float, count: int) -> list[QuarterDemand]:
    """Demand of each quarter ``origin + 900 j`` (0 ≤ j < count) that has readings.

    One pass over the rows in time order: the readings that bracket a quarter's ends are the last of
    the row before and the first of the row after, so no search is needed.
    """
    out = []
    first, total = 0, len(rows)
    while first < total:
        j = rows[first].i
        after = first
        while after < total and rows[after].i == j:
            after += 1
        if 0 <= j < count and after < total:  # a later quarter's reading: this one is completed
            before = rows[first - 1] if first > 0 else None
            following = rows[after] if after < total else None
            demand = _demand(rows[first:after], before, following, origin + QUARTER_S * j)
            if demand is not None:
                out.append(demand)
        first = after
    return out


def _demand(
    quarter: Sequence[QuarterRow], before: QuarterRow | None, after: QuarterRow | None, start: float
) -> QuarterDemand | None:
    end = start + QUARTER_S
    readings = sum(row.n for row in quarter)
    if readings == 0:
        return None
    last = max(quarter, key=lambda row: row.last_ts)
    if last.avg_power_15m_w is not None and end - last.last_ts <= METER_AVG_MAX_GAP_S:
        return QuarterDemand(start, max(0.0, last.avg_power_15m_w) / 1000.0, "meter_avg")
    # A quarter with two epochs (meter replaced in it) is bracketed by neither: no counter delta.
    if len(quarter) == 1:
        energy = _counter_delta(quarter[0], before, after, start, end)
        if energy is not None:
            return QuarterDemand(start, energy * 4.0, "counter")
    positive = sum(row.power_import_sum for row in quarter)
    return QuarterDemand(start, positive / readings / 1000.0, "mean_power")


def _counter_delta(
    row: QuarterRow, before: QuarterRow | None, after: QuarterRow | None, start: float, end: float
) -> float | None:
    """C(end) − C(start) when readings of the row's epoch lie at or before start and after end."""
    if row.import_first is None or row.import_last is None:
        return None
    if row.first_ts <= start:
        at_start = row.import_first
    elif before is not None and before.epoch == row.epoch and before.import_last is not None:
        at_start = _lerp(before.last_ts, before.import_last, row.first_ts, row.import_first, start)
    else:
        return None
    if after is None or after.epoch != row.epoch or after.import_first is None:
        return None
    at_end = _lerp(row.last_ts, row.import_last, after.first_ts, after.import_first, end)
    return max(0.0, at_end - at_start)


def _lerp(t0: float, v0: float, t1: float, v1: float, t: float) -> float:
    return v1 if t1 <= t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
