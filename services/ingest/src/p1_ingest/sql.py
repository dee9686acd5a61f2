"""The statements of the write path (``store.py`` runs them).

One statement inserts a batch's raw rows and folds *only the good rows it inserted* into the rollups
(docs/design.md §5; the fold is the schema's, ``p1_schema.rollups``), updates the device and records new
counter epochs. Suspects that later turn out good (a confirmed counter reset) are folded by the same
rollup SQL, fed by an ``UPDATE … RETURNING``.
"""

from typing import Final

from p1_ingest.edgestate import EDGE_COLUMNS, EDGE_TYPES
from p1_ingest.fields import FIELDS, VALUE_FIELDS
from p1_schema.rollups import FOLD_COUNTS, ROLLED, fold_sql

_ROLLED: Final = ", ".join(ROLLED)
_VALUE_COLS: Final = ", ".join(f.name for f in VALUE_FIELDS)

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

_STAGE_SOURCE: Final = f"""
    -- The session's staging table, filled by binary COPY.
    SELECT $1, ts, epoch, flag, {_VALUE_COLS} FROM p1_stage"""
STAGE_DDL: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS p1_stage (ord int NOT NULL, epoch int NOT NULL, flag text, "
    + ", ".join(f"{f.name} {f.pg_type}" for f in FIELDS)
    + ") ON COMMIT DELETE ROWS"
)


def _insert_sql(source: str) -> str:
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(DEVICE_COLUMNS, start=2))
    e = _P_EPOCHS
    return f"""
WITH ins AS (
    INSERT INTO samples (device_id, ts, epoch, flag, {_VALUE_COLS}){source}
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING {_ROLLED}
), {fold_sql("ins")}, dev AS (
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
SELECT (SELECT count(*) FROM ins)::int AS accepted, {FOLD_COUNTS},
       (SELECT count(*) FROM dev)::int AS dev, (SELECT count(*) FROM ep)::int AS ep
"""


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
    RETURNING {", ".join("s." + c for c in ROLLED)}
), {fold_sql("upd")}
SELECT (SELECT count(*) FROM upd)::int AS settled, {FOLD_COUNTS}
"""

# What ingest writes, as migration 0008's guard expects it: an older ingest must not write to a newer
# schema (its writes fail, and the edges upload them again to the current one).
INGEST_WRITER: Final = "8"
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


# The edge's report (edgestate.EDGE_COLUMNS as $2…), in the batch's transaction after the insert, only for
# a batch that carries one. A newer report stored already (two batches of one device in flight at once)
# is kept: the report of the later request wins, whichever commits last.
_EDGE_SETS: Final = ", ".join(
    f"{c} = ${i}::{t}" for i, (c, t) in enumerate(zip(EDGE_COLUMNS, EDGE_TYPES, strict=True), start=2)
)
EDGE_REPORT_SQL: Final = f"""
UPDATE devices SET {_EDGE_SETS}
 WHERE device_id = $1 AND (edge_reported_at IS NULL OR edge_reported_at <= $2::timestamptz)"""
