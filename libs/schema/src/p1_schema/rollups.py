"""The rollup tables (rollup_15m, rollup_1h, rollup_1d; migrations 0001 and 0002) and the one SQL that
folds raw readings into them.

``fold_sql`` is how every rollup row is made: ingest folds the rows each insert actually inserted
(``p1_ingest.sql``), the bulk loader folds rows read back from ``samples`` (``RECOMPUTE_SQL``). Folding is
a merge (sums add, minima and maxima combine, the values of the latest reading win), so rows folded in
any grouping and order give the same rollups as all of them folded at once, each reading once.
"""

from typing import Final

# date_bin origin: buckets are aligned to UTC quarters and hours.
ORIGIN: Final = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
TABLES: Final = ("rollup_15m", "rollup_1h", "rollup_1d")
# Tariff registers 1 and 2 (day/night, migration 0007): rolled up as the totals are, so that day/night
# energies follow the same interpolation and epochs (issue 13 §5).
TARIFF_COUNTERS: Final = ("import_t1_kwh", "import_t2_kwh", "export_t1_kwh", "export_t2_kwh")
# Counters only grow within an epoch: C_min is the value at first_ts, C_max the value at last_ts.
# (gas_m3/water_m3 here are placed by the poll time and the electricity epoch, as before 0007; series
# read gas and water from the volume rollups below.)
COUNTERS: Final = ("import_kwh", "export_kwh", "gas_m3", "water_m3", *TARIFF_COUNTERS)
# Values of the reading at last_ts; on merge the newer bucket end wins.
LAST_VALUES: Final = ("avg_power_15m_w", "month_peak_w")
# Every rollup column after device_id, in table order.
COLUMNS: Final = (
    "bucket",
    "epoch",
    "n",
    "power_sum",
    "power_min",
    "power_max",
    "power_import_sum",
    "first_ts",
    "last_ts",
    *(f"{c}_{end}" for c in COUNTERS for end in ("min", "max")),
    *LAST_VALUES,
)
# What folding needs of a stored reading (columns of ``samples``).
ROLLED: Final = ("ts", "epoch", "flag", "power_w", *COUNTERS, *LAST_VALUES)

_SOURCE_CTE: Final = {"rollup_15m": "q", "rollup_1h": "h", "rollup_1d": "d"}
_UPSERT_CTE: Final = {"rollup_15m": "r15", "rollup_1h": "r1h", "rollup_1d": "r1d"}


def _upsert_sql(table: str) -> str:
    merge = ",\n            ".join(
        [
            "n = r.n + EXCLUDED.n",
            "power_sum = r.power_sum + EXCLUDED.power_sum",
            "power_min = LEAST(r.power_min, EXCLUDED.power_min)",
            "power_max = GREATEST(r.power_max, EXCLUDED.power_max)",
            "power_import_sum = r.power_import_sum + EXCLUDED.power_import_sum",
            "first_ts = LEAST(r.first_ts, EXCLUDED.first_ts)",
            "last_ts = GREATEST(r.last_ts, EXCLUDED.last_ts)",
            *(f"{c}_min = LEAST(r.{c}_min, EXCLUDED.{c}_min)" for c in COUNTERS),
            *(f"{c}_max = GREATEST(r.{c}_max, EXCLUDED.{c}_max)" for c in COUNTERS),
            *(
                f"{v} = CASE WHEN EXCLUDED.last_ts > r.last_ts THEN EXCLUDED.{v} ELSE r.{v} END"
                for v in LAST_VALUES
            ),
        ]
    )
    return f"""{_UPSERT_CTE[table]} AS (
        INSERT INTO {table} AS r (device_id, {", ".join(COLUMNS)})
        SELECT $1, * FROM {_SOURCE_CTE[table]}
        ON CONFLICT (device_id, bucket, epoch) DO UPDATE SET
            {merge}
        RETURNING 1)"""


def _quarters_sql(rows: str) -> str:
    """The CTE ``q``: the good rows of the CTE ``rows`` (columns ``ROLLED``) per quarter and epoch."""
    counters = ", ".join(f"min({c}) AS {c}_min, max({c}) AS {c}_max" for c in COUNTERS)
    last = ", ".join(f"(array_agg({v} ORDER BY ts DESC))[1] AS {v}" for v in LAST_VALUES)
    return f"""q AS (
    -- suspects and glitches count nowhere; the hour and day rollups are built from these few groups,
    -- not the rows
    SELECT date_bin('15 minutes', ts, {ORIGIN}) AS bucket, epoch, count(*)::int AS n,
           sum(power_w) AS power_sum, min(power_w) AS power_min, max(power_w) AS power_max,
           sum(greatest(power_w, 0)) AS power_import_sum, min(ts) AS first_ts, max(ts) AS last_ts,
           {counters}, {last}
    FROM {rows} WHERE flag IS NULL GROUP BY 1, 2
)"""


def _hours_and_days_sql() -> str:
    """The CTEs ``h`` and ``d``: the quarters of ``q`` per UTC hour and per local day."""
    counters = ", ".join(f"min({c}_min), max({c}_max)" for c in COUNTERS)
    last = ", ".join(f"(array_agg({v} ORDER BY last_ts DESC))[1]" for v in LAST_VALUES)
    merged = "sum(n)::int, sum(power_sum), min(power_min), max(power_max), sum(power_import_sum)"
    return f"""h AS (
    SELECT date_bin('1 hour', bucket, {ORIGIN}), epoch, {merged}, min(first_ts), max(last_ts),
           {counters}, {last}
    FROM q GROUP BY 1, 2
), d AS (
    -- local days of the zone in rollup_1d_zone (migration 0002), from the quarters: every zone's
    -- midnight lies on the UTC quarter grid
    SELECT date_trunc('day', bucket, (SELECT tz FROM rollup_1d_zone)), epoch, {merged}, min(first_ts),
           max(last_ts), {counters}, {last}
    FROM q GROUP BY 1, 2
)"""


def fold_sql(rows: str) -> str:
    """CTEs folding the good rows of the CTE ``rows`` (columns ``ROLLED``) of device $1 into the three
    rollups; they end in the CTEs ``r15``, ``r1h`` and ``r1d`` (one row per rollup row written)."""
    upserts = ", ".join(_upsert_sql(t) for t in TABLES)
    return f"{_quarters_sql(rows)}, {_hours_and_days_sql()}, {upserts}"


# The rows each rollup got from a fold: a select list for the statement that ends in ``fold_sql``.
FOLD_COUNTS: Final = (
    "(SELECT count(*) FROM r15)::int AS r15, (SELECT count(*) FROM r1h)::int AS r1h, "
    "(SELECT count(*) FROM r1d)::int AS r1d"
)

# Device $1's stored readings of [$2, $3) folded into the rollups: for rows that reached ``samples``
# without ingest's insert (the bulk loader); each reading must be folded once.
RECOMPUTE_SQL: Final = f"""
WITH stored AS (
    SELECT {", ".join(ROLLED)} FROM samples WHERE device_id = $1 AND ts >= $2 AND ts < $3
), {fold_sql("stored")}
SELECT (SELECT count(*) FROM stored)::int AS readings, {FOLD_COUNTS}"""

# Device $1's rollup_15m rows of [$2, $3) folded into rollup_1h and rollup_1d: for histories whose
# quarters are made directly (a benchmark's year), each quarter folded once.
HOURS_AND_DAYS_FROM_QUARTERS_SQL: Final = f"""
WITH q AS (
    SELECT {", ".join(COLUMNS)} FROM rollup_15m WHERE device_id = $1 AND bucket >= $2 AND bucket < $3
), {_hours_and_days_sql()}, {_upsert_sql("rollup_1h")}, {_upsert_sql("rollup_1d")}
SELECT (SELECT count(*) FROM r1h)::int AS r1h, (SELECT count(*) FROM r1d)::int AS r1d"""


# --- Gas and water (migration 0007): the meters' own readings (``meter_volumes``: meter, ts, value,
# epoch, flag), placed by the meter's time and rolled up per meter, bucket and the meter's epoch.
VOLUME_TABLES: Final = ("rollup_volume_15m", "rollup_volume_1h", "rollup_volume_1d")
VOLUME_COLUMNS: Final = ("meter", "bucket", "epoch", "n", "first_ts", "last_ts", "value_min", "value_max")
VOLUME_ROLLED: Final = ("meter", "ts", "value", "epoch", "flag")
_VOLUME_SOURCE: Final = {"rollup_volume_15m": "vq", "rollup_volume_1h": "vh", "rollup_volume_1d": "vd"}
_VOLUME_UPSERT: Final = {"rollup_volume_15m": "rv15", "rollup_volume_1h": "rv1h", "rollup_volume_1d": "rv1d"}


def _volume_upsert_sql(table: str) -> str:
    return f"""{_VOLUME_UPSERT[table]} AS (
        INSERT INTO {table} AS r (device_id, {", ".join(VOLUME_COLUMNS)})
        SELECT $1, * FROM {_VOLUME_SOURCE[table]}
        ON CONFLICT (device_id, meter, bucket, epoch) DO UPDATE SET
            n = r.n + EXCLUDED.n, first_ts = LEAST(r.first_ts, EXCLUDED.first_ts),
            last_ts = GREATEST(r.last_ts, EXCLUDED.last_ts),
            value_min = LEAST(r.value_min, EXCLUDED.value_min),
            value_max = GREATEST(r.value_max, EXCLUDED.value_max)
        RETURNING 1)"""


def volume_fold_sql(rows: str) -> str:
    """CTEs folding the good rows of the CTE ``rows`` (columns ``VOLUME_ROLLED``) of device $1 into the
    three volume rollups, by the meter's own time; they end in ``rv15``, ``rv1h`` and ``rv1d``. A merge,
    as ``fold_sql``: any grouping and order of the rows gives the same rollups."""
    merged = "sum(n)::int, min(first_ts), max(last_ts), min(value_min), max(value_max)"
    upserts = ", ".join(_volume_upsert_sql(t) for t in VOLUME_TABLES)
    return f"""vq AS (
    SELECT meter, date_bin('15 minutes', ts, {ORIGIN}) AS bucket, epoch, count(*)::int AS n,
           min(ts) AS first_ts, max(ts) AS last_ts, min(value) AS value_min, max(value) AS value_max
    FROM {rows} WHERE flag IS NULL GROUP BY 1, 2, 3
), vh AS (
    SELECT meter, date_bin('1 hour', bucket, {ORIGIN}), epoch, {merged} FROM vq GROUP BY 1, 2, 3
), vd AS (
    SELECT meter, date_trunc('day', bucket, (SELECT tz FROM rollup_1d_zone)), epoch, {merged}
    FROM vq GROUP BY 1, 2, 3
), {upserts}"""


VOLUME_FOLD_COUNTS: Final = (
    "(SELECT count(*) FROM rv15)::int AS rv15, (SELECT count(*) FROM rv1h)::int AS rv1h, "
    "(SELECT count(*) FROM rv1d)::int AS rv1d"
)
