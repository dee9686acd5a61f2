"""Versioned SQL migrations: ``migrations/NNNN_name.sql``, each applied once in a transaction.

A session-level advisory lock serialises concurrent runs, so replicas (or a migration Job racing
a restarted pod) can all call ``migrate`` at start-up: the first applies, the others find nothing.

A migration may queue devices in ``device_rebuilds`` (0005) whose derived rows (counter epochs, flags,
rollups) must be made again from their raw readings by ingest's own rules. This library cannot do that
(it knows the tables, not the rules), so the runner takes a hook, ``after_sql``, run in the migration's
transaction right after its SQL: ``p1-ingest migrate`` passes its rebuild there. The rebuild writes
through the current ingest code, which writes the newest schema, so it runs after the newest migration
only (``is_newest``): an older migration's queue waits for it. Whatever the hook, the newest migration
is recorded only when the queue is empty afterwards; a run without a hook on a database whose devices
need rebuilding fails with ``RebuildsPending`` and leaves that migration unapplied.
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
    applied: list[str] = []
    known = available_migrations()
    for mig in known:
        if mig.version in done or (up_to is not None and mig.version > up_to):
            continue
        async with conn.transaction():
            await conn.execute(mig.sql)
            if after_sql is not None:
                await after_sql(conn, mig)
            queued = await queued_rebuilds(conn) if mig.version == known[-1].version else 0
            if queued:
                raise RebuildsPending(mig.name, queued)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", mig.version, mig.name
            )
        log.info("migration applied", extra={"migration": mig.name})
        applied.append(mig.name)
    return applied


def is_newest(migration: Migration) -> bool:
    """Whether ``migration`` is the newest this code knows: the one after which rebuilds run."""
    return migration.version == available_migrations()[-1].version


async def queued_rebuilds(conn: Connection) -> int:
    """How many devices wait in the rebuild queue (0 before the migration that creates it)."""
    if await conn.fetchval("SELECT to_regclass($1)", REBUILD_QUEUE) is None:
        return 0
    return int(await conn.fetchval(f"SELECT count(*) FROM {REBUILD_QUEUE}"))
