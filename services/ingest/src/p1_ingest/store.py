"""Exactly-once storage of a batch: raw rows, the rollups (15 min, 1 h, local day), the device and its
counter epochs, and the gas and water readings (``volume_store``), in one transaction whose main
statement inserts the raw rows and folds *only the good rows it inserted* into the rollups
(docs/design.md §5, ``sql.py``). A replayed, concurrent or late batch therefore changes the rollups
exactly as if each reading had arrived once.

The batches of one device are serialised by a row lock on its ``devices`` row (taken first), which
makes the counter-epoch and integrity decisions (``plan.py``, ``integrity.py``) race-free; different
devices proceed in parallel.
"""

import bisect
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from p1_contracts.models import Sample
from p1_contracts.timerange import EARLIEST, LATEST
from p1_ingest.batch import ColumnBatch
from p1_ingest.copybin import STAGE_COLUMNS, encode
from p1_ingest.edgestate import edge_row
from p1_ingest.integrity import Anchor, Limits
from p1_ingest.plan import DeviceState, Plan, Surroundings, Suspect, late_cutoff, plan_batch
from p1_ingest.sql import (
    CREATE_SQL,
    EDGE_REPORT_SQL,
    EPOCHS_SQL,
    INSERT_STAGED_ORDERED_SQL,
    INSERT_STAGED_SQL,
    LOCK_SQL,
    NEIGHBOURS_SQL,
    SETTLE_SUSPECTS_SQL,
    STAGE_DDL,
    STORED_SQL,
    SUSPECTS_SQL,
)
from p1_ingest.volume_store import store_volumes
from p1_schema.capacity import refresh

# Subscripted only for the type checker: asyncpg's classes are not generic at run time.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# The session setting that carries MAX_POWER_W to the write path: the service sets it on every pool
# connection (``power_settings``), a connection without it gets the default.
POWER_SETTING: Final = "p1.max_power_w"


def power_settings(limits: Limits) -> dict[str, str]:
    """Session settings for connections that write: ``server_settings`` of the pool."""
    return {POWER_SETTING: repr(limits.max_power_w)}


@dataclass(frozen=True)
class WriteResult:
    accepted: int
    duplicates: int
    newest: Sample | None  # the batch's newest good reading (stored now or before); None if none is good
    new_epochs: int = 0


async def prepare_connection(conn: "asyncpg.Connection[asyncpg.Record]") -> None:
    """For the pool's ``init``: the session's staging table that ``write_columns`` copies a batch into."""
    await conn.execute(STAGE_DDL)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    # One chunk, sent as it is (a file-like source would be read in a thread).
    yield data


def _whole(value: float | None) -> int | None:
    """The contract sends whole numbers as JSON numbers (3 or 3.0); the column is an integer."""
    return None if value is None else int(value)


async def _lock_device(conn: Conn, device_id: str, lo: datetime, hi: datetime) -> tuple[DeviceState, Limits]:
    row = await conn.fetchrow(LOCK_SQL, device_id)
    if row is None:
        # A new device; a concurrent first batch may create it too (then ours does nothing), and the
        # second SELECT … FOR UPDATE waits for that one's commit.
        await conn.execute(CREATE_SQL, device_id, lo, hi)
        row = await conn.fetchrow(LOCK_SQL, device_id)
        assert row is not None
    state = {k: v for k, v in row.items() if k not in ("w", "max_power_w")}
    power = row["max_power_w"]
    limits = Limits(float(power)) if power else Limits()
    return DeviceState(**state), limits


def _epoch_spans(
    known: Sequence[Any], current: int
) -> tuple[list[datetime], list[tuple[int, datetime, datetime]]]:
    """(starts, [(epoch, lo, hi)]) of the device's epochs in time order; epoch 0 reaches back to the
    range's start (late readings before the first reading belong to it)."""
    if not known:
        return [EARLIEST], [(current, EARLIEST, LATEST)]
    starts = [r["started_at"] for r in known]
    spans = [
        (r["epoch"], EARLIEST if i == 0 else starts[i], starts[i + 1] if i + 1 < len(known) else LATEST)
        for i, r in enumerate(known)
    ]
    return starts, spans


def _nearest(row: Any, raw: str, rolled: str, later: bool) -> Anchor | None:
    """The nearer of the raw neighbour and the rollup one (columns ``{raw}_ts``… and ``{rolled}_ts``…
    of NEIGHBOURS_SQL): before x the later one, after x the earlier one."""
    found = [
        (row[f"{p}_ts"], row[f"{p}_imp"], row[f"{p}_exp"])
        for p in (raw, rolled)
        if row[f"{p}_ts"] is not None
    ]
    if not found:
        return None
    t, imp, exp = (max if later else min)(found, key=lambda c: c[0])
    return Anchor(t.timestamp(), imp, exp)


async def _late_neighbours(
    conn: Conn, device_id: str, late: Sequence[datetime], current: int
) -> dict[datetime, tuple[int, Anchor | None, Anchor | None]]:
    starts, spans = _epoch_spans(await conn.fetch(EPOCHS_SQL, device_id), current)
    epochs, los, his = [], [], []
    for t in late:
        epoch, lo, hi = spans[max(bisect.bisect_right(starts, t) - 1, 0)]
        epochs.append(epoch)
        los.append(lo)
        his.append(hi)
    rows = await conn.fetch(NEIGHBOURS_SQL, device_id, list(late), epochs, los, his)
    by_ts = {r["ts"]: r for r in rows}
    out = {}
    for t, epoch in zip(late, epochs, strict=True):
        r = by_ts[t]
        out[t] = (epoch, _nearest(r, "b", "rb", later=True), _nearest(r, "a", "ra", later=False))
    return out


async def _surroundings(conn: Conn, batch: ColumnBatch, state: DeviceState) -> Surroundings:
    """What the rules need from the database about this batch; nothing for the usual batch (every
    reading newer than the device's newest, no suspects pending)."""
    around = Surroundings()
    last, device_id = state.last_ts, batch.device_id
    if last is None:
        return around
    ts: list[datetime] = batch.in_order("ts")  # type: ignore[assignment]
    if ts[0] <= last:
        old = [t for t in ts if t <= last]
        rows = await conn.fetch(STORED_SQL, device_id, old, old[0], old[-1])
        around.stored = {r["ts"]: r["flag"] for r in rows}
    if state.run_start is not None:
        rows = await conn.fetch(SUSPECTS_SQL, device_id, state.run_start)
        around.suspects = [Suspect(r["ts"], r["import_kwh"], r["export_kwh"], r["epoch"]) for r in rows]
    cutoff = late_cutoff(state)
    late = (
        [] if cutoff is None else [t for t in ts[: bisect.bisect_right(ts, cutoff)] if t not in around.stored]
    )
    if late:
        around.late = await _late_neighbours(conn, device_id, late, state.current_epoch)
    return around


def _device_args(
    batch: ColumnBatch,
    state: DeviceState,
    plan: Plan,
    limits: Limits,
    now: datetime,
    volumes_late: bool = False,
) -> tuple[Any, ...]:
    """$1… of the insert statement: the device row (sql.DEVICE_COLUMNS), the new epochs, the bump."""
    newest = batch.newest_index
    lo, hi = min(batch.ts), batch.ts[newest]
    cols = batch.columns
    has_new = state.last_ts is None or hi > state.last_ts
    meter = batch.meter if batch.meter is not None and (plan.forward or state.meter_serial is None) else None
    good, run = plan.good, plan.run
    return (
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
        *(
            (good.last_at, good.imp, good.exp, good.m_imp, good.m_exp, limits.max_power_w)
            if good is not None
            else (None, None, None, None, None, None)
        ),
        run.start_at if run is not None else None,
        run.n if run is not None else 0,
        [e.epoch for e in plan.new],
        [e.started_at for e in plan.new],
        [e.reason for e in plan.new],
        [e.meter_serial for e in plan.new],
        bool(plan.changed) or volumes_late,
    )


async def _settle(conn: Conn, device_id: str, plan: Plan) -> None:
    """Pending suspects this batch decided: glitches, or good readings of a new epoch (rolled up now)."""
    ts = [c[0] for c in plan.changed]
    flags = [c[1] for c in plan.changed]
    epochs = [c[2] for c in plan.changed]
    await conn.fetchrow(SETTLE_SUSPECTS_SQL, device_id, ts, flags, epochs, min(ts), max(ts))


async def _refresh_capacity(conn: Conn, batch: ColumnBatch, plan: Plan) -> None:
    """The quarter demands the written rollup_15m rows may have changed (capacity_quarters, 0008), in
    the same transaction: a statement of its own, apart from the rollups' fold."""
    times = [*batch.ts, *(c[0] for c in plan.changed)]
    await refresh(conn, batch.device_id, min(times), max(times))


async def write_columns(conn: Conn, batch: ColumnBatch, now: datetime) -> WriteResult:
    """Stores a validated batch exactly once; commits before it returns (or, when the caller holds a
    transaction, becomes a savepoint of it). The rows travel by binary COPY into the session's
    ``p1_stage`` table: the connection must have it (``prepare_connection``)."""
    n = len(batch)
    if n == 0:
        return WriteResult(0, 0, None)
    async with conn.transaction():
        state, limits = await _lock_device(conn, batch.device_id, min(batch.ts), batch.ts[batch.newest_index])
        plan = plan_batch(batch, state, limits, await _surroundings(conn, batch, state))
        if plan.changed:
            await _settle(conn, batch.device_id, plan)
        data = encode(batch, plan.epochs, plan.single, plan.flags)
        await conn.copy_to_table("p1_stage", source=_once(data), columns=STAGE_COLUMNS, format="binary")
        sql = INSERT_STAGED_ORDERED_SQL if batch.repeated else INSERT_STAGED_SQL
        volumes_late = await store_volumes(conn, batch)
        row = await conn.fetchrow(sql, *_device_args(batch, state, plan, limits, now, volumes_late))
        assert row is not None
        if batch.edge is not None:
            await conn.execute(EDGE_REPORT_SQL, batch.device_id, *edge_row(batch.edge, now))
        if row["accepted"] or plan.changed:
            await _refresh_capacity(conn, batch, plan)
    accepted = int(row["accepted"])
    newest = None if plan.newest_good is None else batch.row(plan.newest_good)
    return WriteResult(accepted, n - accepted, newest, len(plan.new))
