"""Capacity's statements: each month's top quarters (their demands kept by ingest by the rules of
``p1_schema.capacity``), the meter's own month peak and the peaks it reported.

Twelve months are ~35,000 quarters: they are ranked where the rows are, and only each month's few
highest quarters travel to Python. No statement here names a time zone: local months arrive as
their UTC boundaries, computed in Python (``buckets.month_bounds``), so any zone of Python's time zone
data works, whatever PostgreSQL's own data knows.
"""

from datetime import datetime
from typing import Final

from p1_query.db import Conn
from p1_schema.capacity import DAY_TOPS, MONTH_TOPS_SQL, QUARTER_S

_METER_PEAKS_SQL: Final = (
    "SELECT month, peak_w FROM meter_peaks WHERE device_id = $1 AND month = ANY($2::text[])"
)

_METER_PEAK_SQL: Final = f"""
SELECT month_peak_w FROM rollup_15m
 WHERE device_id = $1 AND bucket >= $2::timestamptz - interval '{QUARTER_S} seconds' AND bucket < $3
   AND last_ts >= $2 AND last_ts < $3 AND month_peak_w IS NOT NULL
 ORDER BY bucket DESC, last_ts DESC LIMIT 1"""


async def month_quarters(
    conn: Conn, device_id: str, month_edges: list[datetime], per_month: int
) -> tuple[list[tuple[float, float]], list[int]]:
    """(UTC start seconds, kW) of the ``per_month`` highest quarters of each month, in time order, and
    each month's count of completed quarters. ``month_edges`` are consecutive months' UTC boundaries: the
    first one's start, …, the last one's end."""
    if per_month > DAY_TOPS:
        raise ValueError(f"capacity_days keeps {DAY_TOPS} quarters a day, not {per_month}")
    rows = await conn.fetch(MONTH_TOPS_SQL, device_id, month_edges, per_month)
    counts = [0] * (len(month_edges) - 1)
    for row in rows:
        counts[row["month"] - 1] = row["quarters"]
    return [(row["start"], row["kw"]) for row in rows], counts


async def top_quarters(
    conn: Conn, device_id: str, month_edges: list[datetime], per_month: int
) -> list[tuple[float, float]]:
    """The tops of ``month_quarters`` alone."""
    return (await month_quarters(conn, device_id, month_edges, per_month))[0]


async def meter_peaks_kw(conn: Conn, device_id: str, months: list[str]) -> dict[str, float]:
    """The peaks the meter reported (``meter_peaks``, migration 0008) of these months, in kW."""
    rows = await conn.fetch(_METER_PEAKS_SQL, device_id, months)
    return {row["month"]: row["peak_w"] / 1000.0 for row in rows}


async def meter_month_peak_w(conn: Conn, device_id: str, start: datetime, end: datetime) -> float | None:
    """The meter's own month peak at the month's last reading that carries one."""
    value = await conn.fetchval(_METER_PEAK_SQL, device_id, start, end)
    return None if value is None else float(value)
