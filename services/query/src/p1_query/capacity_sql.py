"""Capacity's statements: the quarter-hour demand rules in SQL, each month's top quarters, the meter's
own month peak.

Twelve months are ~35,000 quarters: the demand is computed where the rows are, and only each month's
few highest quarters travel to Python. No statement here names a time zone: local months arrive as
their UTC boundaries, computed in Python (``buckets.month_bounds``), so any zone of Python's time zone
data works, whatever PostgreSQL's own data knows.
"""

from datetime import datetime
from typing import Final

from p1_query.db import Conn

QUARTER_S: Final = 900
# The meter's running average counts as the quarter's when its last reading is this close to the end.
METER_AVG_MAX_GAP_S: Final = 60


def quarters_with_neighbours(columns: str) -> str:
    """``columns`` of the rollup_15m rows of device $1 in [$2, $3), of the last row before and of the
    first after: the readings that bracket the range's first and last quarter."""
    return f"""
    (SELECT {columns} FROM rollup_15m WHERE device_id = $1 AND bucket >= $2 AND bucket < $3)
    UNION ALL
    (SELECT {columns} FROM rollup_15m WHERE device_id = $1 AND bucket < $2
      ORDER BY bucket DESC, epoch DESC LIMIT 1)
    UNION ALL
    (SELECT {columns} FROM rollup_15m WHERE device_id = $1 AND bucket >= $3
      ORDER BY bucket, epoch LIMIT 1)"""


_QUARTER_SOURCE: Final = """
    bucket, epoch, n, power_import_sum, first_ts, last_ts, import_kwh_min AS first_kwh,
    import_kwh_max AS last_kwh, avg_power_15m_w AS meter_avg_w"""

# The quarter-hour demand (kW) of each quarter of [$2, $3) with readings, as ``demand(bucket, kw)``, by
# three rules in order of preference: (1) the meter's average at a last reading ≤ METER_AVG_MAX_GAP_S
# before the quarter's end; (2) the import counter interpolated at both ends, when the quarter is one
# epoch's and the rows around it are of that epoch; (3) the mean of positive power. lag/lead over
# (bucket, epoch) are the last reading before a row and the first after it. A Python statement of the
# same rules, in the tests (capacity_reference.py), is held equal to this one on every test scene.
QUARTER_DEMAND_SQL: Final = f"""
WITH quarter_rows AS ({quarters_with_neighbours(_QUARTER_SOURCE)}
), around AS (
    SELECT *,
           lag(epoch) OVER by_time AS prev_epoch, lag(last_ts) OVER by_time AS prev_ts,
           lag(last_kwh) OVER by_time AS prev_kwh,
           lead(epoch) OVER by_time AS next_epoch, lead(first_ts) OVER by_time AS next_ts,
           lead(first_kwh) OVER by_time AS next_kwh,
           count(*) OVER quarter AS epochs, sum(n) OVER quarter AS readings,
           sum(power_import_sum) OVER quarter AS positive_sum,
           -- epochs follow each other in time: a quarter's last row by epoch holds its last reading
           lead(bucket) OVER by_time IS DISTINCT FROM bucket AS latest,
           extract(epoch FROM bucket + interval '{QUARTER_S} seconds' - last_ts)::float8 AS to_end
      FROM quarter_rows
    WINDOW by_time AS (ORDER BY bucket, epoch), quarter AS (PARTITION BY bucket)
), demand AS (
    SELECT bucket,
           CASE
             WHEN meter_avg_w IS NOT NULL AND to_end <= {METER_AVG_MAX_GAP_S}
               THEN greatest(meter_avg_w, 0) / 1000
             WHEN epochs = 1 AND first_kwh IS NOT NULL AND last_kwh IS NOT NULL
                  AND next_epoch = epoch AND next_kwh IS NOT NULL
                  AND (first_ts <= bucket OR (prev_epoch = epoch AND prev_kwh IS NOT NULL)) THEN
               greatest(0,
                 last_kwh + (next_kwh - last_kwh) * to_end / extract(epoch FROM next_ts - last_ts)::float8
                 - CASE WHEN first_ts <= bucket THEN first_kwh
                        ELSE prev_kwh + (first_kwh - prev_kwh) * extract(epoch FROM bucket - prev_ts)::float8
                                        / extract(epoch FROM first_ts - prev_ts)::float8 END) * 4
             ELSE positive_sum / readings / 1000
           END AS kw
      FROM around
     WHERE latest AND bucket >= $2 AND bucket < $3 AND readings > 0
)"""

# Each month's $5 highest quarters (ties: the earlier). $4 holds the months' boundaries, the first
# month's start to the last one's end: width_bucket finds a quarter's month by binary search.
_TOP_QUARTERS_SQL: Final = f"""{QUARTER_DEMAND_SQL}
SELECT extract(epoch FROM bucket)::float8 AS start, kw FROM (
    SELECT bucket, kw, row_number() OVER (
               PARTITION BY width_bucket(bucket, $4::timestamptz[]) ORDER BY kw DESC, bucket) AS rank
      FROM demand) ranked
 WHERE rank <= $5
 ORDER BY bucket"""

_METER_PEAK_SQL: Final = f"""
SELECT month_peak_w FROM rollup_15m
 WHERE device_id = $1 AND bucket >= $2::timestamptz - interval '{QUARTER_S} seconds' AND bucket < $3
   AND last_ts >= $2 AND last_ts < $3 AND month_peak_w IS NOT NULL
 ORDER BY bucket DESC, last_ts DESC LIMIT 1"""


async def top_quarters(
    conn: Conn, device_id: str, month_edges: list[datetime], per_month: int
) -> list[tuple[float, float]]:
    """(UTC start seconds, kW) of the ``per_month`` highest quarters of each month, in time order.
    ``month_edges`` are consecutive months' UTC boundaries: the first one's start, …, the last one's end."""
    rows = await conn.fetch(
        _TOP_QUARTERS_SQL, device_id, month_edges[0], month_edges[-1], month_edges, per_month
    )
    return [(row["start"], row["kw"]) for row in rows]


async def meter_month_peak_w(conn: Conn, device_id: str, start: datetime, end: datetime) -> float | None:
    """The meter's own month peak at the month's last reading that carries one."""
    value = await conn.fetchval(_METER_PEAK_SQL, device_id, start, end)
    return None if value is None else float(value)
