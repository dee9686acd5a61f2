"""The statements of the write path (``store.py`` runs them).

One statement inserts a batch's raw rows and folds *only the good rows it inserted* into the rollups
(DESIGN.md §6), updates the device and records new counter epochs. Suspects that later turn out good
(a confirmed counter reset) are folded by the same rollup SQL, fed by an ``UPDATE … RETURNING``.
"""

from typing import Final

from .fields import FIELDS, VALUE_FIELDS

# date_bin origin: buckets are aligned to UTC quarters and hours.
_ORIGIN: Final = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
_COUNTERS: Final = ("import_kwh", "export_kwh", "gas_m3", "water_m3")
# Values of the reading at last_ts; on merge the newer bucket end wins.
_LAST_VALUES: Final = ("avg_power_15m_w", "month_peak_w")
# What the rollups need of a stored row.
_ROLLED: Final = f"ts, epoch, flag, power_w, {', '.join(_COUNTERS)}, {', '.join(_LAST_VALUES)}"

_VALUE_COLS: Final = ", ".join(f.name for f in VALUE_FIELDS)
_RECORD: Final = ", ".join(f"{f.name} {f.pg_type}" for f in FIELDS)
_NAMES: Final = ", ".join(f.name for f in FIELDS)

# The device row written by every batch, in parameter order from $2 ($1 is the device id).
DEVICE_COLUMNS: Final = (
    "first_seen",
    "last_seen",
    "meter_serial",
    "meter_model",
    "meter_protocol_version",
    "current_epoch",
    "last_ts",
    "last_import_kwh",
    "last_export_kwh",
    "updated_at",
    "good_ts",
    "good_import_kwh",
    "good_export_kwh",
    "good_import_m",
    "good_export_m",
    "integrity_power_w",
    "run_start",
    "run_n",
)
_P_EPOCHS: Final = 2 + len(DEVICE_COLUMNS)  # four arrays: the new counter epochs
_P_BUMP: Final = _P_EPOCHS + 4  # stored rows changed (late_writes)
_P_SOURCE: Final = _P_BUMP + 1  # the JSON source's parameters

_JSON_SOURCE: Final = f"""
    -- In body order (WITH ORDINALITY indexes the epochs and flags); of readings with the same ts the
    -- first is inserted and the others meet the conflict, as do readings stored before.
    SELECT $1, r.ts,
           CASE WHEN ${_P_SOURCE + 1}::int[] IS NULL THEN ${_P_SOURCE + 2}::int
                ELSE (${_P_SOURCE + 1}::int[])[r.ordinality::int] END,
           (${_P_SOURCE + 3}::text[])[r.ordinality::int],
           {", ".join("r." + f.name for f in VALUE_FIELDS)}
    FROM ROWS FROM (json_to_recordset(${_P_SOURCE}::json) AS ({_RECORD}))
         WITH ORDINALITY AS r({_NAMES}, ordinality)"""
_STAGE_SOURCE: Final = f"""
    -- The session's staging table, filled by binary COPY.
    SELECT $1, ts, epoch, flag, {_VALUE_COLS} FROM p1_stage"""
STAGE_DDL: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS p1_stage (ord int NOT NULL, epoch int NOT NULL, flag text, "
    + ", ".join(f"{f.name} {f.pg_type}" for f in FIELDS)
    + ") ON COMMIT DELETE ROWS"
)

_SOURCE_CTE: Final = {"rollup_15m": "q", "rollup_1h": "h", "rollup_1d": "d"}


def _rollup_sql(table: str) -> str:
    counters = ", ".join(f"{c}_min, {c}_max" for c in _COUNTERS)
    merge = ",\n            ".join(
        [
            "n = r.n + EXCLUDED.n",
            "power_sum = r.power_sum + EXCLUDED.power_sum",
            "power_min = LEAST(r.power_min, EXCLUDED.power_min)",
            "power_max = GREATEST(r.power_max, EXCLUDED.power_max)",
            "power_import_sum = r.power_import_sum + EXCLUDED.power_import_sum",
            "first_ts = LEAST(r.first_ts, EXCLUDED.first_ts)",
            "last_ts = GREATEST(r.last_ts, EXCLUDED.last_ts)",
            *(f"{c}_min = LEAST(r.{c}_min, EXCLUDED.{c}_min)" for c in _COUNTERS),
            *(f"{c}_max = GREATEST(r.{c}_max, EXCLUDED.{c}_max)" for c in _COUNTERS),
            *(
                f"{v} = CASE WHEN EXCLUDED.last_ts > r.last_ts THEN EXCLUDED.{v} ELSE r.{v} END"
                for v in _LAST_VALUES
            ),
        ]
    )
    return f"""INSERT INTO {table} AS r (device_id, bucket, epoch, n, power_sum, power_min, power_max,
            power_import_sum, first_ts, last_ts, {counters}, {", ".join(_LAST_VALUES)})
        SELECT $1, * FROM {_SOURCE_CTE[table]}
        ON CONFLICT (device_id, bucket, epoch) DO UPDATE SET
            {merge}
        RETURNING 1"""


def _fold_sql(rows: str) -> str:
    """CTEs folding the good rows of the CTE ``rows`` (columns ``_ROLLED``) into the three rollups."""
    counters_q = ", ".join(f"min({c}) AS {c}_min, max({c}) AS {c}_max" for c in _COUNTERS)
    counters_h = ", ".join(f"min({c}_min), max({c}_max)" for c in _COUNTERS)
    last_q = ", ".join(f"(array_agg({v} ORDER BY ts DESC))[1] AS {v}" for v in _LAST_VALUES)
    last_h = ", ".join(f"(array_agg({v} ORDER BY last_ts DESC))[1]" for v in _LAST_VALUES)
    return f"""q AS (
    -- the good rows per quarter (suspects and glitches count nowhere); the 1-hour rollup is built from
    -- these few groups, not the rows
    SELECT date_bin('15 minutes', ts, {_ORIGIN}) AS bucket, epoch, count(*)::int AS n,
           sum(power_w) AS power_sum, min(power_w) AS power_min, max(power_w) AS power_max,
           sum(greatest(power_w, 0)) AS power_import_sum, min(ts) AS first_ts, max(ts) AS last_ts,
           {counters_q}, {last_q}
    FROM {rows} WHERE flag IS NULL GROUP BY 1, 2
), h AS (
    SELECT date_bin('1 hour', bucket, {_ORIGIN}), epoch, sum(n)::int, sum(power_sum), min(power_min),
           max(power_max), sum(power_import_sum), min(first_ts), max(last_ts), {counters_h}, {last_h}
    FROM q GROUP BY 1, 2
), d AS (
    -- local days of the zone in rollup_1d_zone (migration 0002), from the quarters: every zone's
    -- midnight lies on the UTC quarter grid
    SELECT date_trunc('day', bucket, (SELECT tz FROM rollup_1d_zone)), epoch, sum(n)::int, sum(power_sum),
           min(power_min), max(power_max), sum(power_import_sum), min(first_ts), max(last_ts), {counters_h},
           {last_h}
    FROM q GROUP BY 1, 2
), r15 AS ({_rollup_sql("rollup_15m")}
), r1h AS ({_rollup_sql("rollup_1h")}
), r1d AS ({_rollup_sql("rollup_1d")}
)"""


def _insert_sql(source: str) -> str:
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(DEVICE_COLUMNS, start=2))
    e = _P_EPOCHS
    return f"""
WITH ins AS (
    INSERT INTO samples (device_id, ts, epoch, flag, {_VALUE_COLS}){source}
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING {_ROLLED}
), {_fold_sql("ins")}, dev AS (
    -- (SET expressions see the row as it was: last_ts is the newest reading before this batch)
    UPDATE devices SET {sets},
           late_writes = late_writes
               + (EXISTS (SELECT 1 FROM ins WHERE ins.ts <= devices.last_ts) OR ${_P_BUMP}::bool)::int
    WHERE device_id = $1
    RETURNING 1
), ep AS (
    INSERT INTO counter_epochs (device_id, epoch, started_at, reason, meter_serial)
    SELECT $1, * FROM unnest(${e}::int[], ${e + 1}::timestamptz[], ${e + 2}::text[], ${e + 3}::text[])
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins)::int AS accepted,
       (SELECT count(*) FROM r15)::int AS r15, (SELECT count(*) FROM r1h)::int AS r1h,
       (SELECT count(*) FROM r1d)::int AS r1d,
       (SELECT count(*) FROM dev)::int AS dev, (SELECT count(*) FROM ep)::int AS ep
"""


INSERT_SQL: Final = _insert_sql(_JSON_SOURCE)
INSERT_STAGED_SQL: Final = _insert_sql(_STAGE_SOURCE)
# With repeated ts in the body, in body order so that the first of them is the one inserted; without,
# the order does not matter and the sort is saved.
INSERT_STAGED_ORDERED_SQL: Final = _insert_sql(_STAGE_SOURCE + " ORDER BY ord")

# Pending suspects decided by this batch: glitches, or good rows of a new epoch, folded into the
# rollups now. $2..$4 the rows (ts, flag, epoch), $5/$6 their time span (for partition pruning).
SETTLE_SUSPECTS_SQL: Final = f"""
WITH upd AS (
    UPDATE samples s SET flag = u.flag, epoch = u.epoch
      FROM unnest($2::timestamptz[], $3::text[], $4::int[]) AS u(ts, flag, epoch)
     WHERE s.device_id = $1 AND s.ts = u.ts AND s.ts >= $5 AND s.ts <= $6 AND s.flag = 'suspect'
    RETURNING {", ".join("s." + c for c in _ROLLED.split(", "))}
), {_fold_sql("upd")}
SELECT (SELECT count(*) FROM upd)::int AS settled, (SELECT count(*) FROM r15)::int AS r15,
       (SELECT count(*) FROM r1h)::int AS r1h, (SELECT count(*) FROM r1d)::int AS r1d
"""

# What ingest writes, as migration 0005's guard expects it: an older ingest must not write to a newer
# schema (its writes fail, and the edges upload them again to the current one).
INGEST_WRITER: Final = "5"
LOCK_SQL: Final = f"""
SELECT first_seen, last_seen, meter_serial, meter_model, meter_protocol_version, current_epoch,
       last_ts, last_import_kwh, last_export_kwh, good_ts, good_import_kwh, good_export_kwh,
       good_import_m, good_export_m, integrity_power_w, run_start, run_n,
       set_config('p1.ingest_writer', '{INGEST_WRITER}', true) AS w,
       current_setting('p1.max_power_w', true) AS max_power_w
FROM devices WHERE device_id = $1 FOR UPDATE"""
CREATE_SQL: Final = """
INSERT INTO devices (device_id, first_seen, last_seen) VALUES ($1, $2, $3)
ON CONFLICT (device_id) DO NOTHING"""
EPOCHS_SQL: Final = "SELECT epoch, started_at FROM counter_epochs WHERE device_id = $1 ORDER BY started_at"
# The batch's readings stored already, with their flag ($3/$4: the span, for partition pruning).
STORED_SQL: Final = """
SELECT ts, flag FROM samples WHERE device_id = $1 AND ts = ANY($2::timestamptz[]) AND ts >= $3 AND ts <= $4"""
# The pending suspects: the device's readings from the run's first on (a good reading after it would
# have ended the run, later ones are all in it), by the primary key.
SUSPECTS_SQL: Final = """
SELECT ts, import_kwh, export_kwh, epoch FROM samples
 WHERE device_id = $1 AND ts >= $2 AND flag = 'suspect' ORDER BY ts"""


def _anchor(side: str, cmp: str) -> str:
    """A rollup_15m row's first or last reading nearest to x on ``side`` (raw readings may be gone)."""
    near, far = ("last", "first") if side == "before" else ("first", "last")
    near_v, far_v = ("max", "min") if side == "before" else ("min", "max")
    order = "DESC" if side == "before" else ""
    span = (
        "bucket <= x.ts AND bucket >= x.lo - interval '15 minutes' AND first_ts < x.ts"
        if side == "before"
        else "bucket > x.ts - interval '15 minutes' AND bucket < x.hi AND last_ts > x.ts"
    )
    pick = f"{near}_ts {cmp} x.ts"
    return f"""(
      SELECT CASE WHEN {pick} THEN {near}_ts ELSE {far}_ts END AS ts,
             CASE WHEN {pick} THEN import_kwh_{near_v} ELSE import_kwh_{far_v} END AS imp,
             CASE WHEN {pick} THEN export_kwh_{near_v} ELSE export_kwh_{far_v} END AS exp
        FROM rollup_15m WHERE device_id = $1 AND epoch = x.epoch AND {span}
       ORDER BY bucket {order} LIMIT 1)"""


# Per late reading x (ts, epoch in force, that epoch's span [lo, hi)): its nearest good readings of the
# epoch before and after, from samples and from the rollup's first/last readings (which outlive raw
# retention). Each lookup is one index probe.
NEIGHBOURS_SQL: Final = f"""
SELECT x.ts, b.ts AS b_ts, b.import_kwh AS b_imp, b.export_kwh AS b_exp,
       a.ts AS a_ts, a.import_kwh AS a_imp, a.export_kwh AS a_exp,
       rb.ts AS rb_ts, rb.imp AS rb_imp, rb.exp AS rb_exp, ra.ts AS ra_ts, ra.imp AS ra_imp, ra.exp AS ra_exp
  FROM unnest($2::timestamptz[], $3::int[], $4::timestamptz[], $5::timestamptz[]) AS x(ts, epoch, lo, hi)
  LEFT JOIN LATERAL (
      SELECT ts, import_kwh, export_kwh FROM samples
       WHERE device_id = $1 AND ts < x.ts AND ts >= x.lo AND epoch = x.epoch AND flag IS NULL
       ORDER BY ts DESC LIMIT 1) b ON true
  LEFT JOIN LATERAL (
      SELECT ts, import_kwh, export_kwh FROM samples
       WHERE device_id = $1 AND ts > x.ts AND ts < x.hi AND epoch = x.epoch AND flag IS NULL
       ORDER BY ts LIMIT 1) a ON true
  LEFT JOIN LATERAL {_anchor("before", "<")} rb ON true
  LEFT JOIN LATERAL {_anchor("after", ">")} ra ON true"""
