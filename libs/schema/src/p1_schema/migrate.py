"""Versioned SQL migrations: ``migrations/NNNN_name.sql``, each applied once in a transaction.

A session-level advisory lock serialises concurrent runs, so replicas (or a migration Job racing
a restarted pod) can all call ``migrate`` at start-up: the first applies, the others find nothing.

A migration may queue devices in ``device_rebuilds`` (0005) whose derived rows (counter epochs, flags,
rollups) must be made again from their raw readings by ingest's own rules. This library cannot do that
(it knows the tables, not the rules), so the runner takes a hook, ``after_sql``, run in the migration's
transaction right after its SQL: ``p1-ingest migrate`` passes its rebuild there, and rebuilds only once
the newest migration is applied (its write path needs the newest schema). While the queue is not empty
the next migrations join the same transaction; a migration is recorded only when the queue is empty
afterwards; a run without a hook on a database whose devices need rebuilding fails with
``RebuildsPending`` and leaves those migrations unapplied.
"""

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Final, TypeAlias

import asyncpg

log = logging.getLogger(__name__)

# Arbitrary but fixed: "p1mg" in ASCII.
ADVISORY_LOCK_KEY: Final = 0x70316D67
# Devices whose derived rows a migration asks to be rebuilt from their raw readings (migration 0005).
REBUILD_QUEUE: Final = "device_rebuilds"
_NAME: Final = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")

Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record]"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


# Run inside a migration's transaction, after its SQL: e.g. ingest's rebuild of the queued devices.
AfterSql: TypeAlias = Callable[[Connection, Migration], Awaitable[None]]


class RebuildsPending(RuntimeError):
    """A migration queued devices for a rebuild and nothing rebuilt them: run ``p1-ingest migrate``."""

    def __init__(self, migration: str, devices: int) -> None:
        super().__init__(
            f"{migration} queued {devices} device(s) for a rebuild from their raw readings; "
            "apply it with `p1-ingest migrate`, which rebuilds them"
        )


def available_migrations() -> list[Migration]:
    found = []
    for entry in files(__package__).joinpath("migrations").iterdir():
        m = _NAME.fullmatch(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


async def migrate(
    database_url: str, up_to: int | None = None, *, after_sql: AfterSql | None = None
) -> list[str]:
    """Applies pending migrations (those up to version ``up_to`` when given: tests build a database of
    an older schema that way); returns the names applied by this call."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            return await _apply_pending(conn, up_to, after_sql)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: Connection, up_to: int | None, after_sql: AfterSql | None) -> list[str]:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    pending = [
        mig
        for mig in available_migrations()
        if mig.version not in done and (up_to is None or mig.version <= up_to)
    ]
    applied: list[str] = []
    start = 0
    while start < len(pending):
        async with conn.transaction():
            group = await _apply_group(conn, pending[start:], after_sql)
            for mig in group:
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", mig.version, mig.name
                )
        for mig in group:
            log.info("migration applied", extra={"migration": mig.name})
        applied += [mig.name for mig in group]
        start += len(group)
    return applied


async def _apply_group(
    conn: Connection, pending: list[Migration], after_sql: AfterSql | None
) -> list[Migration]:
    """Applies the first pending migration, and while devices wait for a rebuild the ones after it, in
    the caller's transaction: a rebuild replays readings through ingest's write path of today, which
    needs the newest schema (its columns, its writer version), so the devices a migration queues are
    rebuilt once the run's last migration is applied, and all of them are recorded only then."""
    group: list[Migration] = []
    for mig in pending:
        await conn.execute(mig.sql)
        if after_sql is not None:
            await after_sql(conn, mig)
        group.append(mig)
        queued = await queued_rebuilds(conn)
        if not queued:
            return group
    raise RebuildsPending(group[0].name, queued)


async def queued_rebuilds(conn: Connection) -> int:
    """How many devices wait in the rebuild queue (0 before the migration that creates it)."""
    if await conn.fetchval("SELECT to_regclass($1)", REBUILD_QUEUE) is None:
        return 0
    return int(await conn.fetchval(f"SELECT count(*) FROM {REBUILD_QUEUE}"))
