"""Rebuild one device's counter epochs, integrity flags and rollups from its raw readings.

How: the device's raw readings from ``since`` on are taken out of ``samples`` and written again, in time
order and in batches, through the ingest write path itself (``store.write_columns``), from the device's
state just before ``since``. So the result is by construction what ingest would have made of those
readings arriving in order: the same rules, the same SQL. Meter replacements recorded in
``counter_epochs`` are replayed as serial changes at the same readings.

``since`` is the device's first raw reading, unless the rollups hold older readings whose raw rows are
gone (raw retention): then the first local midnight (of the rollup_1d zone) at or after the first raw
reading, and everything before it — rollups, epochs, flags — is kept as it is.

Used by ``p1-ingest migrate`` for the devices a migration queued in ``device_rebuilds`` (0005: those
that had readings outside the supported range; ``after_migration`` is the hook it gives the schema's
migration runner) and by ``p1-ingest rebuild DEVICE``. Runs in the
caller's transaction when there is one (a migration), else in its own.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg

from p1_contracts.models import Meter
from p1_contracts.timerange import EARLIEST, LATEST
from p1_ingest.batch import ColumnBatch
from p1_ingest.fields import FIELD_NAMES
from p1_ingest.integrity import Limits
from p1_ingest.sql import INGEST_WRITER, STAGE_DDL
from p1_ingest.store import POWER_SETTING, Conn, write_columns
from p1_schema.capacity import REFRESH_DAYS_SQL
from p1_schema.migrate import REBUILD_QUEUE, AfterSql, Connection, Migration, available_migrations
from p1_schema.migrate import migrate as schema_migrate
from p1_schema.rollups import VOLUME_TABLES

log = logging.getLogger(__name__)

CHUNK: Final = 5000
_ONE_US: Final = timedelta(microseconds=1)
_LOCK: Final = f"""
SELECT meter_serial, meter_model, meter_protocol_version,
       set_config('p1.ingest_writer', '{INGEST_WRITER}', true) AS w
  FROM devices WHERE device_id = $1 FOR UPDATE"""
_FIRSTS: Final = """
SELECT (SELECT min(ts) FROM samples WHERE device_id = $1) AS raw_first,
       (SELECT min(first_ts) FROM rollup_15m WHERE device_id = $1) AS roll_first,
       (SELECT max(last_ts) FROM rollup_15m WHERE device_id = $1) AS roll_last"""
# The first midnight of the rollup_1d zone at or after $1.
_NEXT_MIDNIGHT: Final = """
SELECT CASE WHEN date_trunc('day', $1::timestamptz, z.tz) = $1::timestamptz THEN $1::timestamptz
            ELSE ((date_trunc('day', $1::timestamptz, z.tz) AT TIME ZONE z.tz) + interval '1 day')
                 AT TIME ZONE z.tz
       END
  FROM rollup_1d_zone z"""
_BEFORE: Final = """
SELECT (SELECT row(ts, import_kwh, export_kwh) FROM samples
         WHERE device_id = $1 AND ts < $2 ORDER BY ts DESC LIMIT 1) AS newest,
       (SELECT row(ts, import_kwh, export_kwh, epoch) FROM samples
         WHERE device_id = $1 AND ts < $2 AND flag IS NULL ORDER BY ts DESC LIMIT 1) AS good,
       (SELECT row(last_ts, import_kwh_max, export_kwh_max, epoch) FROM rollup_15m
         WHERE device_id = $1 AND bucket < $2 ORDER BY bucket DESC, epoch DESC LIMIT 1) AS rolled"""
_RESET: Final = """
UPDATE devices SET first_seen = $2, last_seen = $3, current_epoch = $4, last_ts = $5, last_import_kwh = $6,
       last_export_kwh = $7, good_ts = $8, good_import_kwh = $9, good_export_kwh = $10, good_import_m = NULL,
       good_export_m = NULL, integrity_power_w = NULL, run_start = NULL, run_n = 0, meter_serial = $11
 WHERE device_id = $1"""
_CHUNK_SQL: Final = f"""
SELECT {", ".join(FIELD_NAMES)} FROM p1_rebuild
 WHERE ts > $1 AND ($2::timestamptz IS NULL OR ts < $2) ORDER BY ts LIMIT $3"""
_FINISH: Final = """
UPDATE devices SET meter_serial = $2, meter_model = $3, meter_protocol_version = $4,
       late_writes = late_writes + 1, updated_at = $5
 WHERE device_id = $1"""


@dataclass(frozen=True)
class RebuildReport:
    device_id: str
    outcome: str  # "rebuilt", "deleted" (nothing left), "unknown" (no such device)
    readings: int = 0
    since: datetime | None = None


async def rebuild_device(conn: Conn, device_id: str, limits: Limits, now: datetime) -> RebuildReport:
    async with conn.transaction():
        await conn.execute(STAGE_DDL)
        await conn.execute("SELECT set_config($1, $2, true)", POWER_SETTING, repr(limits.max_power_w))
        meter = await conn.fetchrow(_LOCK, device_id)
        if meter is None:
            return RebuildReport(device_id, "unknown")
        firsts = await conn.fetchrow(_FIRSTS, device_id)
        assert firsts is not None
        raw_first, roll_first = firsts["raw_first"], firsts["roll_first"]
        if raw_first is None:
            if roll_first is None:
                await conn.execute("DELETE FROM devices WHERE device_id = $1", device_id)
                await conn.execute("DELETE FROM capacity_quarters WHERE device_id = $1", device_id)
                await conn.execute("DELETE FROM capacity_days WHERE device_id = $1", device_id)
                return RebuildReport(device_id, "deleted")
            return RebuildReport(device_id, "rebuilt")  # only rollups: nothing to rebuild from
        since = EARLIEST
        if roll_first is not None and roll_first < raw_first:
            since = await conn.fetchval(_NEXT_MIDNIGHT, raw_first)
        segments = await _forget(conn, device_id, since, meter["meter_serial"])
        await _reset(conn, device_id, since, min(raw_first, roll_first or raw_first), segments[0][1])
        count = await _replay(conn, device_id, segments, meter, now)
        # Every day from since's on, from the quarter demands the replay left (its writes kept the days
        # they touched; a day of quarters before since and none after was not touched)
        await conn.fetchrow(REFRESH_DAYS_SQL, device_id, since, LATEST)
        await conn.execute(
            _FINISH,
            device_id,
            meter["meter_serial"],
            meter["meter_model"],
            meter["meter_protocol_version"],
            now,
        )
    log.info("device rebuilt", extra={"device_id": device_id, "readings": count, "since": since.isoformat()})
    return RebuildReport(device_id, "rebuilt", count, since)


async def _forget(
    conn: Conn, device_id: str, since: datetime, serial: str | None
) -> list[tuple[datetime, str | None]]:
    """Takes away what was derived from the readings from ``since`` on, and moves those readings into the
    temporary table ``p1_rebuild``. Returns the meter segments to replay: (from, serial), the first
    from ``since`` with the serial in force there, then one per recorded meter replacement."""
    epochs = await conn.fetch(
        "SELECT started_at, reason, meter_serial FROM counter_epochs WHERE device_id = $1"
        " ORDER BY started_at",
        device_id,
    )
    for table in ("rollup_15m", "rollup_1h", "rollup_1d", *VOLUME_TABLES):
        await conn.execute(f"DELETE FROM {table} WHERE device_id = $1 AND bucket >= $2", device_id, since)
    await _forget_volumes(conn, device_id, since)
    # The quarter demands (0008): made again by the replay's writes, which refresh them as ingest does.
    await conn.execute(
        "DELETE FROM capacity_quarters WHERE device_id = $1 AND bucket >= $2", device_id, since
    )
    await conn.execute(
        "DELETE FROM counter_epochs WHERE device_id = $1 AND started_at >= $2", device_id, since
    )
    # Suspects left before ``since`` can no longer be decided: the replay starts without pending ones.
    await conn.execute(
        "UPDATE samples SET flag = 'glitch' WHERE device_id = $1 AND flag = 'suspect' AND ts < $2",
        device_id,
        since,
    )
    await conn.execute("DROP TABLE IF EXISTS pg_temp.p1_rebuild")
    await conn.execute("CREATE TEMP TABLE p1_rebuild (LIKE samples INCLUDING INDEXES) ON COMMIT DROP")
    await conn.execute(
        "WITH moved AS (DELETE FROM samples WHERE device_id = $1 AND ts >= $2 RETURNING *) "
        "INSERT INTO p1_rebuild SELECT * FROM moved",
        device_id,
        since,
    )
    before = [e["meter_serial"] for e in epochs if e["started_at"] < since]
    later = [e for e in epochs if e["started_at"] >= since and e["reason"] == "meter_replaced"]
    if before:
        first = before[-1]
    elif epochs and epochs[0]["reason"] != "meter_replaced":
        first = epochs[0]["meter_serial"]
    else:  # no epoch says which meter came first: the device's, unless it was replaced since
        first = None if later else serial
    return [(since, first), *((e["started_at"], e["meter_serial"]) for e in later)]


async def _forget_volumes(conn: Conn, device_id: str, since: datetime) -> None:
    """The gas and water readings from ``since`` on are made again from the raw readings; the state
    starts again from the newest good reading left (``volume_store``)."""
    await conn.execute("DELETE FROM meter_volumes WHERE device_id = $1 AND ts >= $2", device_id, since)
    await conn.execute(
        "UPDATE meter_volumes SET flag = 'glitch' WHERE device_id = $1 AND flag = 'suspect'", device_id
    )
    await conn.execute("DELETE FROM meter_volume_state WHERE device_id = $1", device_id)


async def _reset(
    conn: Conn, device_id: str, since: datetime, first_seen: datetime, serial: str | None
) -> None:
    """The device row as it was just before ``since`` (as if new, for a whole rebuild)."""
    row = await conn.fetchrow(_BEFORE, device_id, since)
    assert row is not None
    newest, good, rolled = row["newest"], row["good"], row["rolled"]
    if good is None:
        good = rolled
    if newest is None and rolled is not None:
        newest = tuple(rolled)[:3]
    last: tuple[Any, ...] = tuple(newest) if newest is not None else (None, None, None)
    g: tuple[Any, ...] = tuple(good) if good is not None else (None, None, None, 0)
    await conn.execute(_RESET, device_id, first_seen, last[0] or first_seen, g[3], *last, *g[:3], serial)


async def _replay(
    conn: Conn, device_id: str, segments: list[tuple[datetime, str | None]], meter: Any, now: datetime
) -> int:
    """The readings of ``p1_rebuild`` through the write path, in time order, ``CHUNK`` at a time; a
    batch never spans a meter replacement, and carries the serial of its segment."""
    total = int(await conn.fetchval("SELECT count(*) FROM p1_rebuild"))
    count = 0
    for k, (lo, serial) in enumerate(segments):
        hi = segments[k + 1][0] if k + 1 < len(segments) else None
        batch_meter = (
            None
            if serial is None
            else Meter.model_construct(
                serial=serial, model=meter["meter_model"], protocol_version=meter["meter_protocol_version"]
            )
        )
        after = lo - _ONE_US
        for _ in range(total // CHUNK + 1):  # each pass takes CHUNK rows, or is the last
            rows = await conn.fetch(_CHUNK_SQL, after, hi, CHUNK)
            if not rows:
                break
            columns = {name: [r[name] for r in rows] for name in FIELD_NAMES}
            await write_columns(conn, ColumnBatch(device_id, batch_meter, columns), now)
            count += len(rows)
            after = rows[-1]["ts"]
    return count


async def rebuild_queued(conn: Conn, limits: Limits, now: datetime) -> list[RebuildReport]:
    """Rebuilds every device in the schema's rebuild queue and empties it (within the caller's
    transaction)."""
    if await conn.fetchval("SELECT to_regclass($1)", REBUILD_QUEUE) is None:
        return []
    reports = []
    for row in await conn.fetch(f"SELECT device_id FROM {REBUILD_QUEUE} ORDER BY device_id"):
        reports.append(await rebuild_device(conn, row["device_id"], limits, now))
        await conn.execute(f"DELETE FROM {REBUILD_QUEUE} WHERE device_id = $1", row["device_id"])
    return reports


def after_migration(limits: Limits) -> AfterSql:
    """``p1_schema.migrate``'s hook for ``p1-ingest migrate``: the devices a migration queued, rebuilt
    in that migration's transaction once the newest migration is applied in it (so their versions are
    recorded only once they are)."""

    newest = available_migrations()[-1].version

    async def rebuild(conn: Connection, migration: Migration) -> None:
        if migration.version < newest:
            # Ingest's write path writes the newest schema's columns and writer version: the runner
            # applies the next migrations in this transaction first, then calls again.
            return
        for report in await rebuild_queued(conn, limits, datetime.now(UTC)):
            log.info(
                "device rebuilt",
                extra={"device_id": report.device_id, "outcome": report.outcome, "migration": migration.name},
            )

    return rebuild


async def migrate(database_url: str, up_to: int | None = None, limits: Limits | None = None) -> list[str]:
    """``p1-ingest migrate``: the schema's migrations, each with the rebuilds it queues (judged by
    ``limits``: MAX_POWER_W)."""
    return await schema_migrate(database_url, up_to, after_sql=after_migration(limits or Limits()))


async def rebuild_devices(
    database_url: str, device_ids: Sequence[str], limits: Limits
) -> list[RebuildReport]:
    """``p1-ingest rebuild DEVICE…``: each device in its own transaction."""
    conn = await asyncpg.connect(database_url)
    try:
        return [await rebuild_device(conn, d, limits, datetime.now(UTC)) for d in device_ids]
    finally:
        await conn.close()
