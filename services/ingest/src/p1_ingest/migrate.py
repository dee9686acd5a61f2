"""Versioned SQL migrations: ``migrations/NNNN_name.sql``, each applied once in a transaction.

A session-level advisory lock serialises concurrent runs, so replicas (or a migration Job racing
a restarted pod) can all call ``migrate`` at start-up: the first applies, the others find nothing.

A migration may queue devices in ``device_rebuilds`` (0005); they are rebuilt from their raw readings
(``rebuild.py``) in that migration's transaction, right after its SQL, so the version is recorded only
once they are.
"""

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from typing import Final

import asyncpg

from .integrity import Limits
from .rebuild import rebuild_queued

log = logging.getLogger("p1.migrate")

# Arbitrary but fixed: "p1mg" in ASCII.
ADVISORY_LOCK_KEY: Final = 0x70316D67
_NAME: Final = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    found = []
    for entry in files(__package__).joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


async def migrate(database_url: str, up_to: int | None = None, limits: Limits | None = None) -> list[str]:
    """Applies pending migrations (those up to version ``up_to`` when given: tests build a database of
    an older schema that way); returns the names applied by this call. ``limits``: what the rebuilds a
    migration queues judge readings by (MAX_POWER_W)."""
    conn = await asyncpg.connect(database_url)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for mig in available_migrations():
                if mig.version in done or (up_to is not None and mig.version > up_to):
                    continue
                async with conn.transaction():
                    await conn.execute(mig.sql)
                    for report in await rebuild_queued(conn, limits or Limits(), datetime.now(UTC)):
                        log.info(
                            "device rebuilt", extra={"device_id": report.device_id, "outcome": report.outcome}
                        )
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        mig.version,
                        mig.name,
                    )
                log.info("migration applied", extra={"migration": mig.name})
                applied.append(mig.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()
    return applied
