"""Quarter-hour demand, the capacity tariff's unit (docs/design.md §8): the rules in SQL, over rollup_15m.

Query ranks the demands of a window's months; ingest and the bulk loader keep them in
``capacity_quarters`` (migration 0008, ``p1_schema.capacity_store``) so that the ledger reads a few
thousand narrow rows instead of recomputing the rules over a year of quarters.
"""

from datetime import datetime
from typing import Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from p1_schema.rollups import ORIGIN

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

# The quarter-hour demand (kW) of each *completed* quarter of [$2, $3) with readings, as
# ``demand(bucket, kw)``, by three rules in order of preference: (1) the meter's average at a last
# reading ≤ METER_AVG_MAX_GAP_S before the quarter's end; (2) the import counter interpolated at both
# ends, when the quarter is one epoch's and the rows around it are of that epoch; (3) the mean of
# positive power. A quarter is completed once the device has a good reading in a later quarter: the
# running one (no later row) is not a quarter yet, so a short spike at its start cannot pass for its
# demand. lag/lead over (bucket, epoch) are the last reading before a row and the first after it. A
# Python statement of the same rules, in the tests (capacity_reference.py), is held equal to this one
# on every test scene.
QUARTER_DEMAND_SQL: Final = f"""
WITH quarter_rows AS ({quarters_with_neighbours(_QUARTER_SOURCE)}
), around AS (
    SELECT *,
           lag(epoch) OVER by_time AS prev_epoch, lag(last_ts) OVER by_time AS prev_ts,
           lag(last_kwh) OVER by_time AS prev_kwh,
           lead(epoch) OVER by_time AS next_epoch, lead(first_ts) OVER by_time AS next_ts,
           lead(first_kwh) OVER by_time AS next_kwh, lead(bucket) OVER by_time AS next_bucket,
           count(*) OVER quarter AS epochs, sum(n) OVER quarter AS readings,
           sum(power_import_sum) OVER quarter AS positive_sum,
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
     -- epochs follow each other in time: a quarter's last row by epoch holds its last reading, and
     -- the row after it, if any, is a later quarter's
     WHERE next_bucket IS DISTINCT FROM bucket AND next_bucket IS NOT NULL
       AND bucket >= $2 AND bucket < $3 AND readings > 0
)"""

# The same rules as a SQL function of migration 0008, ``p1_capacity_quarters(device, lo, hi)``: what
# ingest, the bulk loader and the migration's backfill run. Its body is this text (a test holds the
# function's source equal to it).
DEMAND_FUNCTION_BODY: Final = QUARTER_DEMAND_SQL + "\nSELECT bucket, kw FROM demand"

# capacity_quarters (0008) holds the demand of every completed quarter, maintained with the rollups: after
# rollup_15m rows of device $1 were written for readings in [$2, $3] (any instants), the demands that
# may have changed are those of the quarters written, of the quarter before them (its next row, hence
# its counter at the end and its completeness) and of the one after (its previous row): SPAN_SQL.
SPAN_SQL: Final = f"""
SELECT coalesce((SELECT max(bucket) FROM rollup_15m
                  WHERE device_id = $1 AND bucket < date_bin('15 minutes', $2::timestamptz, {ORIGIN})),
                date_bin('15 minutes', $2::timestamptz, {ORIGIN})) AS lo,
       coalesce((SELECT min(bucket) FROM rollup_15m
                  WHERE device_id = $1 AND bucket > date_bin('15 minutes', $3::timestamptz, {ORIGIN})),
                date_bin('15 minutes', $3::timestamptz, {ORIGIN})) + interval '{QUARTER_S} seconds' AS hi"""

# Those quarters, [$2, $3) from SPAN_SQL, computed afresh from rollup_15m and written where they differ;
# a quarter that has no demand any more is deleted. The rules' text is inlined (not the function) so
# that the statement is prepared once per connection: a write costs a few index probes and the rules
# over a handful of quarters.
REFRESH_SQL: Final = f"""{QUARTER_DEMAND_SQL}, up AS (
    INSERT INTO capacity_quarters AS c (device_id, bucket, kw) SELECT $1, bucket, kw FROM demand
    ON CONFLICT (device_id, bucket) DO UPDATE SET kw = EXCLUDED.kw WHERE c.kw IS DISTINCT FROM EXCLUDED.kw
    RETURNING 1
), gone AS (
    DELETE FROM capacity_quarters c
     WHERE c.device_id = $1 AND c.bucket >= $2 AND c.bucket < $3
       AND NOT EXISTS (SELECT 1 FROM demand d WHERE d.bucket = c.bucket)
    RETURNING 1
)
SELECT (SELECT count(*) FROM up)::int AS written, (SELECT count(*) FROM gone)::int AS removed"""

# capacity_days (0008): per device and UTC day, its count of completed quarters and its DAY_TOPS highest
# (kw DESC, then the earlier), so that a month's top quarters and count read ~30 day rows and the
# quarters of the partial days at its two ends (a local month starts at a local midnight), not ~3,000
# quarters. A month's top ``n ≤ DAY_TOPS`` are among its days' tops: the order is the same total one.
DAY_TOPS: Final = 5
_DAY: Final = f"date_bin('1 day', bucket, {ORIGIN})"
_DAY_ROWS: Final = f"""
    SELECT device_id, {_DAY} AS day, count(*)::int AS quarters,
           (array_agg(bucket ORDER BY kw DESC, bucket))[1:{DAY_TOPS}] AS buckets,
           (array_agg(kw ORDER BY kw DESC, bucket))[1:{DAY_TOPS}] AS kws
      FROM capacity_quarters"""

# The days of device $1 that hold quarters of [$2, $3) (SPAN_SQL's span), made again from
# capacity_quarters after REFRESH_SQL changed any: a statement of its own, so that it sees what that
# one wrote.
REFRESH_DAYS_SQL: Final = f"""
WITH fresh AS ({_DAY_ROWS}
     WHERE device_id = $1 AND bucket >= date_bin('1 day', $2::timestamptz, {ORIGIN})
       AND bucket < date_bin('1 day', $3::timestamptz - interval '1 microsecond', {ORIGIN}) + interval '1 day'
     GROUP BY 1, 2
), up AS (
    INSERT INTO capacity_days AS x (device_id, day, quarters, buckets, kws) SELECT * FROM fresh
    ON CONFLICT (device_id, day) DO UPDATE
       SET quarters = EXCLUDED.quarters, buckets = EXCLUDED.buckets, kws = EXCLUDED.kws
    RETURNING 1
), gone AS (
    DELETE FROM capacity_days x
     WHERE x.device_id = $1 AND x.day >= date_bin('1 day', $2::timestamptz, {ORIGIN})
       AND x.day < $3::timestamptz AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.day = x.day)
    RETURNING 1
)
SELECT (SELECT count(*) FROM up)::int AS written, (SELECT count(*) FROM gone)::int AS removed"""

# (Query's ledger and p1_peakguard's rolling average read months with it.) Each month's $3 (≤ DAY_TOPS)
# highest quarters (ties: the earlier) and its count of completed quarters,
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
MONTH_TOPS_SQL: Final = f"""{_MONTHS_CTE}
SELECT r.i AS month, extract(epoch FROM r.bucket)::float8 AS start, r.kw, c.quarters FROM (
    SELECT i, bucket, kw, row_number() OVER (PARTITION BY i ORDER BY kw DESC, bucket) AS rank
      FROM candidates) r
  JOIN counts c USING (i)
 WHERE r.rank <= $3
 ORDER BY r.bucket"""

# Every device's days, from capacity_quarters (migration 0008's backfill).
ALL_DAYS_SQL: Final = f"INSERT INTO capacity_days {_DAY_ROWS} GROUP BY 1, 2"


async def refresh(
    conn: "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]",
    device_id: str,
    first: datetime,
    last: datetime,
) -> None:
    """The quarter demands and days that rollup_15m rows written for readings in [first, last] may have
    changed. Most live uploads complete no quarter: then nothing changed and the days are left alone."""
    span = await conn.fetchrow(SPAN_SQL, device_id, first, last)
    assert span is not None
    lo, hi = span["lo"], span["hi"]
    done = await conn.fetchrow(REFRESH_SQL, device_id, lo, hi)
    assert done is not None
    if done["written"] or done["removed"]:
        await conn.fetchrow(REFRESH_DAYS_SQL, device_id, lo, hi)
