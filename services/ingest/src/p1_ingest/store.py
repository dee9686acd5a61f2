"""Exactly-once storage of a batch: raw rows, the rollups (15 min, 1 h, local day), the device and its
counter epochs, in one
transaction whose main statement inserts the raw rows and folds *only the rows it inserted* into the
rollups (DESIGN.md §6). A replayed, concurrent or late batch therefore changes the rollups exactly as
if each reading had arrived once.

The batches of one device are serialised by a row lock on its ``devices`` row (taken first), which
makes the counter-epoch decision race-free; different devices proceed in parallel.
"""

import bisect
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from p1_contracts.models import Sample, SampleBatch

from .batch import ColumnBatch, from_model
from .copybin import STAGE_COLUMNS, encode
from .fields import FIELDS, VALUE_FIELDS

# Subscripted only for the type checker: asyncpg's classes are not generic at run time.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# date_bin origin: buckets are aligned to UTC quarters and hours.
_ORIGIN: Final = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
_COUNTERS: Final = ("import_kwh", "export_kwh", "gas_m3", "water_m3")
# Values of the reading at last_ts; on merge the newer bucket end wins.
_LAST_VALUES: Final = ("avg_power_15m_w", "month_peak_w")


@dataclass(frozen=True)
class WriteResult:
    accepted: int
    duplicates: int
    newest: Sample | None  # the batch's newest reading (stored now or before)
    new_epochs: int = 0


@dataclass
class DeviceState:
    exists: bool
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    meter_serial: str | None = None
    meter_model: str | None = None
    meter_protocol_version: int | None = None
    current_epoch: int = 0
    last_ts: datetime | None = None
    last_import_kwh: float | None = None
    last_export_kwh: float | None = None


@dataclass(frozen=True)
class NewEpoch:
    epoch: int
    started_at: datetime
    reason: str
    meter_serial: str | None


@dataclass
class EpochPlan:
    epochs: list[int] | None  # per reading in body order; None when ``single`` is every reading's
    single: int
    new: list[NewEpoch] = field(default_factory=list)
    current_epoch: int = 0


def plan_epochs(
    batch: ColumnBatch, state: DeviceState, known: Sequence[tuple[int, datetime]] = ()
) -> EpochPlan:
    """The counter epoch of every reading of ``batch``.

    In ts order: a reading newer than the device's newest starts a new epoch when the meter serial
    changed (first new reading of the batch) or when import or export went down compared with the
    previous reading. An older (late) reading gets the epoch in force at its ts, from ``known``
    (epoch, started_at) sorted by started_at; before the first epoch's start means epoch 0.
    """
    ts: list[datetime] = batch.in_order("ts")  # type: ignore[assignment]
    imp: list[float] = batch.in_order("import_kwh")  # type: ignore[assignment]
    exp: list[float] = batch.in_order("export_kwh")  # type: ignore[assignment]
    serial = batch.meter.serial if batch.meter is not None else None
    n = len(ts)
    first_new = 0 if state.last_ts is None else bisect.bisect_right(ts, state.last_ts)
    epochs: list[int] = []
    if first_new:
        if len(known) <= 1:
            epochs = [state.current_epoch] * first_new
        else:
            starts = [s for _, s in known]
            for t in ts[:first_new]:
                i = bisect.bisect_right(starts, t) - 1
                epochs.append(known[max(i, 0)][0])
    cur = state.current_epoch
    new: list[NewEpoch] = []
    if first_new < n:
        if state.last_ts is None:
            new.append(NewEpoch(cur, ts[first_new], "first", serial))
            prev_imp, prev_exp = imp[first_new], exp[first_new]
        else:
            prev_imp = state.last_import_kwh if state.last_import_kwh is not None else imp[first_new]
            prev_exp = state.last_export_kwh if state.last_export_kwh is not None else exp[first_new]
            if serial is not None and state.meter_serial is not None and serial != state.meter_serial:
                cur += 1
                new.append(NewEpoch(cur, ts[first_new], "meter_replaced", serial))
                prev_imp, prev_exp = imp[first_new], exp[first_new]
        # The usual case — counters that never go down — is one pass in C-level builtins.
        steady = (
            prev_imp <= imp[first_new]
            and prev_exp <= exp[first_new]
            and all(a <= b for a, b in itertools.pairwise(imp[first_new:]))
            and all(a <= b for a, b in itertools.pairwise(exp[first_new:]))
        )
        if steady:
            epochs.extend([cur] * (n - first_new))
        else:
            for i in range(first_new, n):
                if imp[i] < prev_imp or exp[i] < prev_exp:
                    cur += 1
                    new.append(NewEpoch(cur, ts[i], "counter_reset", serial))
                epochs.append(cur)
                prev_imp, prev_exp = imp[i], exp[i]
    if len(set(epochs)) <= 1:
        return EpochPlan(None, epochs[0] if epochs else cur, new, cur)
    order = batch.order
    if order is None:
        return EpochPlan(epochs, cur, new, cur)
    # Back to body order; a repeated ts gets its first occurrence's epoch (it is not inserted anyway).
    by_ts = dict(zip((batch.ts[i] for i in order), epochs, strict=True))
    return EpochPlan([by_ts[t] for t in batch.ts], cur, new, cur)


# --- SQL -----------------------------------------------------------------------------------------

_VALUE_COLS: Final = ", ".join(f.name for f in VALUE_FIELDS)
_RECORD: Final = ", ".join(f"{f.name} {f.pg_type}" for f in FIELDS)
_NAMES: Final = ", ".join(f.name for f in FIELDS)
# $1 device_id, $2…$15 the device row and new epochs; the JSON source adds $16 samples, $17 epochs,
# $18 the single epoch.
_P: Final = 2
_JSON_SOURCE: Final = f"""
    -- In body order (WITH ORDINALITY indexes the epochs); of readings with the same ts the first is
    -- inserted and the others meet the conflict, as do readings stored before.
    SELECT $1, r.ts, CASE WHEN $17::int[] IS NULL THEN $18::int ELSE ($17::int[])[r.ordinality::int] END,
           {", ".join("r." + f.name for f in VALUE_FIELDS)}
    FROM ROWS FROM (json_to_recordset($16::json) AS ({_RECORD})) WITH ORDINALITY AS r({_NAMES}, ordinality)"""
_STAGE_SOURCE: Final = f"""
    -- The session's staging table, filled by binary COPY.
    SELECT $1, ts, epoch, {_VALUE_COLS} FROM p1_stage"""
STAGE_DDL: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS p1_stage (ord int NOT NULL, epoch int NOT NULL, "
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


def _insert_sql(source: str) -> str:
    counters_q = ", ".join(f"min({c}) AS {c}_min, max({c}) AS {c}_max" for c in _COUNTERS)
    counters_h = ", ".join(f"min({c}_min), max({c}_max)" for c in _COUNTERS)
    last_q = ", ".join(f"(array_agg({v} ORDER BY ts DESC))[1] AS {v}" for v in _LAST_VALUES)
    last_h = ", ".join(f"(array_agg({v} ORDER BY last_ts DESC))[1]" for v in _LAST_VALUES)
    p = _P
    return f"""
WITH ins AS (
    INSERT INTO samples (device_id, ts, epoch, {_VALUE_COLS}){source}
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING ts, epoch, power_w, {", ".join(_COUNTERS)}, {", ".join(_LAST_VALUES)}
), q AS (
    -- the inserted rows per quarter: the 1-hour rollup is built from these few groups, not the rows
    SELECT date_bin('15 minutes', ts, {_ORIGIN}) AS bucket, epoch, count(*)::int AS n,
           sum(power_w) AS power_sum, min(power_w) AS power_min, max(power_w) AS power_max,
           sum(greatest(power_w, 0)) AS power_import_sum, min(ts) AS first_ts, max(ts) AS last_ts,
           {counters_q}, {last_q}
    FROM ins GROUP BY 1, 2
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
), dev AS (
    -- (SET expressions see the row as it was: last_ts is the newest reading before this batch)
    UPDATE devices SET first_seen = ${p}, last_seen = ${p + 1}, meter_serial = ${p + 2},
           meter_model = ${p + 3}, meter_protocol_version = ${p + 4}, current_epoch = ${p + 5},
           last_ts = ${p + 6}, last_import_kwh = ${p + 7}, last_export_kwh = ${p + 8}, updated_at = ${p + 9},
           late_writes = late_writes + (EXISTS (SELECT 1 FROM ins WHERE ins.ts <= devices.last_ts))::int
    WHERE device_id = $1
    RETURNING 1
), ep AS (
    INSERT INTO counter_epochs (device_id, epoch, started_at, reason, meter_serial)
    SELECT $1, * FROM unnest(${p + 10}::int[], ${p + 11}::timestamptz[], ${p + 12}::text[], ${p + 13}::text[])
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


async def prepare_connection(conn: "asyncpg.Connection[asyncpg.Record]") -> None:
    """For the pool's ``init``: the session's staging table used by ``write_columns(staged=True)``."""
    await conn.execute(STAGE_DDL)


# What this code writes, as migration 0004's guard expects it: an older ingest must not write to a newer
# schema (its writes fail, and the edges upload them again to the current one).
INGEST_WRITER: Final = "4"
_LOCK_SQL: Final = f"""
SELECT first_seen, last_seen, meter_serial, meter_model, meter_protocol_version, current_epoch,
       last_ts, last_import_kwh, last_export_kwh, set_config('p1.ingest_writer', '{INGEST_WRITER}', true) AS w
FROM devices WHERE device_id = $1 FOR UPDATE"""
_CREATE_SQL: Final = """
INSERT INTO devices (device_id, first_seen, last_seen) VALUES ($1, $2, $3)
ON CONFLICT (device_id) DO NOTHING"""
_EPOCHS_SQL: Final = "SELECT epoch, started_at FROM counter_epochs WHERE device_id = $1 ORDER BY started_at"


async def _once(data: bytes) -> AsyncIterator[bytes]:
    # One chunk, sent as it is (a file-like source would be read in a thread).
    yield data


def _whole(value: float | None) -> int | None:
    """The contract sends whole numbers as JSON numbers (3 or 3.0); the column is an integer."""
    return None if value is None else int(value)


async def _lock_device(conn: Conn, device_id: str, lo: datetime, hi: datetime) -> DeviceState:
    row = await conn.fetchrow(_LOCK_SQL, device_id)
    if row is None:
        # A new device; a concurrent first batch may create it too (then ours does nothing), and the
        # second SELECT … FOR UPDATE waits for that one's commit.
        await conn.execute(_CREATE_SQL, device_id, lo, hi)
        row = await conn.fetchrow(_LOCK_SQL, device_id)
        assert row is not None
    state = {k: v for k, v in row.items() if k != "w"}
    return DeviceState(exists=row["last_ts"] is not None, **state)


async def write_columns(
    conn: Conn, batch: ColumnBatch, now: datetime, *, staged: bool = False
) -> WriteResult:
    """Stores a validated batch exactly once; commits before it returns (or, when the caller holds a
    transaction, becomes a savepoint of it).

    ``staged``: the rows travel by binary COPY into the session's ``p1_stage`` table (see
    ``prepare_connection``), the fast path of the service; otherwise as one JSON parameter, which
    needs nothing of the connection (``write_batch``, used by other packages' tests)."""
    n = len(batch)
    if n == 0:
        return WriteResult(0, 0, None)
    newest = batch.newest_index
    lo, hi = min(batch.ts), batch.ts[newest]
    cols = batch.columns
    async with conn.transaction():
        state = await _lock_device(conn, batch.device_id, lo, hi)
        known: list[tuple[int, datetime]] = []
        if state.current_epoch > 0 and state.last_ts is not None and lo <= state.last_ts:
            known = [(r["epoch"], r["started_at"]) for r in await conn.fetch(_EPOCHS_SQL, batch.device_id)]
        plan = plan_epochs(batch, state, known)
        has_new = state.last_ts is None or hi > state.last_ts
        meter = batch.meter if batch.meter is not None and (has_new or state.meter_serial is None) else None
        device_args = (
            batch.device_id,
            lo if state.first_seen is None else min(state.first_seen, lo),
            hi if state.last_seen is None else max(state.last_seen, hi),
            meter.serial if meter else state.meter_serial,
            meter.model if meter else state.meter_model,
            _whole(meter.protocol_version) if meter else state.meter_protocol_version,
            plan.current_epoch,
            hi if has_new else state.last_ts,
            cols["import_kwh"][newest] if has_new else state.last_import_kwh,
            cols["export_kwh"][newest] if has_new else state.last_export_kwh,
            now,
            [e.epoch for e in plan.new],
            [e.started_at for e in plan.new],
            [e.reason for e in plan.new],
            [e.meter_serial for e in plan.new],
        )
        if staged:
            data = encode(batch, plan.epochs, plan.single)
            await conn.copy_to_table("p1_stage", source=_once(data), columns=STAGE_COLUMNS, format="binary")
            sql = INSERT_STAGED_ORDERED_SQL if batch.repeated else INSERT_STAGED_SQL
            row = await conn.fetchrow(sql, *device_args)
        else:
            row = await conn.fetchrow(INSERT_SQL, *device_args, batch.samples_json, plan.epochs, plan.single)
        assert row is not None
    accepted = int(row["accepted"])
    return WriteResult(accepted, n - accepted, batch.row(newest), len(plan.new))


async def write_batch(conn: Conn, batch: SampleBatch, now: datetime) -> WriteResult:
    """The ingest storage path for a contract-validated batch (also what other packages' tests use to
    load data). Applies no request-level rules (e.g. "at most 5 minutes ahead"): the caller did."""
    return await write_columns(conn, from_model(batch), now)
