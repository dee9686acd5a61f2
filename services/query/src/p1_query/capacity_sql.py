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
from p1_schema.capacity import DAY_TOPS, QUARTER_S
from p1_schema.rollups import ORIGIN

# Each month's $3 (≤ DAY_TOPS) highest quarters (ties: the earlier) and its count of completed quarters,
# from what ingest keeps (migration 0008): the month's whole UTC days from capacity_days (their tops and
# counts), the partial days at its two ends (a local month starts at a local midnight) from
# capacity_quarters. $2 holds the months' boundaries, the first month's start to the last one's end. A
# year reads ~360 day rows and ~1,000 quarters.
_MONTHS_CTE: Final = f"""
WITH months AS (
    SELECT i, ($2::timestamptz[])[i] AS s, ($2::timestamptz[])[i + 1] AS e,
           date_bin('1 day', ($2::timestamptz[])[i] - interval '1 microsecond', {ORIGIN})
               + interval '1 day' AS ds,
           date_bin('1 day', ($2::timestamptz[])[i + 1], {ORIGIN}) AS de
      FROM generate_series(1, cardinality($2::timestamptz[]) - 1) AS i
), edges AS (
    SELECT m.i, q.bucket, q.kw FROM months m JOIN capacity_quarters q
        ON q.device_id = $1
       AND ((q.bucket >= m.s AND q.bucket < m.ds) OR (q.bucket >= m.de AND q.bucket < m.e))
), days AS (
    SELECT m.i, d.quarters, d.buckets, d.kws FROM months m JOIN capacity_days d
        ON d.device_id = $1 AND d.day >= m.ds AND d.day < m.de
), candidates AS (
    SELECT i, bucket, kw FROM edges
    UNION ALL
    SELECT i, t.bucket, t.kw FROM days, unnest(days.buckets, days.kws) AS t(bucket, kw)
), counts AS (
    SELECT i, sum(n)::int AS quarters FROM (
        SELECT i, count(*) AS n FROM edges GROUP BY i
        UNION ALL
        SELECT i, sum(quarters) AS n FROM days GROUP BY i) parts
     GROUP BY i
)"""
_TOP_QUARTERS_SQL: Final = f"""{_MONTHS_CTE}
SELECT r.i AS month, extract(epoch FROM r.bucket)::float8 AS start, r.kw, c.quarters FROM (
    SELECT i, bucket, kw, row_number() OVER (PARTITION BY i ORDER BY kw DESC, bucket) AS rank
      FROM candidates) r
  JOIN counts c USING (i)
 WHERE r.rank <= $3
 ORDER BY r.bucket"""

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
    rows = await conn.fetch(_TOP_QUARTERS_SQL, device_id, month_edges, per_month)
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
