"""``p1-ingest restore PATH``: a ``p1-ingest backup`` archive into the empty database of DATABASE_URL.

- **All or nothing**: pg_restore runs in one transaction (``--single-transaction``), so a failed restore
  leaves the database as empty as it was; its messages say why (a missing role of a GRANT, say).
- **Empty target only**: a database that already has tables is refused, never merged into.
- **Owners**: every object belongs to the restoring user (``--no-owner``: the new server's roles need not
  match the old one's); grants are restored, so the roles they name must exist (compose's database
  creates Grafana's reader on its first start).
- **TimescaleDB**, as its documentation prescribes: the server must run the very TimescaleDB version of
  the backup (read from the archive's catalog), since the archive holds that version's catalog; the
  extension is created at that version, ``timescaledb_pre_restore()`` before, ``timescaledb_post_restore()``
  after (also after a failure, so the database never stays in restore mode). Hypertables, their chunks,
  compressed ones included, and the policies come back as they were. A plain PostgreSQL backup is refused
  on a database that has the extension (``maintain`` would take it for a hypertable).
- Then ``ANALYZE`` (pg_restore copies no planner statistics), and the restored database's summary.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg

from p1_ingest.dbsummary import DatabaseSummary, is_p1_database, summarise
from p1_ingest.pgtools import ToolError, libpq_connection, pg_tool, run_tool, tool_output

_SAMPLES: Final = re.compile(r"^\d+; \d+ \d+ TABLE public samples ", re.MULTILINE)
_TIMESCALEDB: Final = re.compile(r"^\d+; \d+ \d+ EXTENSION - timescaledb\b", re.MULTILINE)
_TSDB_VERSION: Final = re.compile(r"^timescaledb_version\t([0-9A-Za-z.\-]+)\t", re.MULTILINE)
_USER_TABLES: Final = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"""
_TSDB_STATE: Final = """
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS installed,
       (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb') AS available,
       coalesce(current_setting('shared_preload_libraries', true), '') LIKE '%timescaledb%' AS preloaded,
       current_setting('server_version_num')::int / 10000 AS pg_major"""


@dataclass(frozen=True)
class Archive:
    path: Path
    timescaledb: str | None  # the TimescaleDB version the backup was taken with; None: plain PostgreSQL


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise ToolError(f"{path}: no such backup file")


async def read_archive(pg_restore: str, path: Path) -> Archive:
    """What the archive is, from its table of contents; ``ToolError`` unless it is a p1 backup."""
    _require_file(path)
    toc = await tool_output([pg_restore, "--list", str(path)])
    if not _SAMPLES.search(toc):
        raise ToolError(f"{path} is not a p1-telemetry backup (it has no table public.samples)")
    if not _TIMESCALEDB.search(toc):
        return Archive(path, None)
    catalog = await tool_output(
        [
            pg_restore,
            "--data-only",
            "--schema=_timescaledb_catalog",
            "--table=metadata",
            "--file=-",
            str(path),
        ]
    )
    found = _TSDB_VERSION.search(catalog)
    if found is None:
        raise ToolError(f"{path}: a TimescaleDB backup without its version in _timescaledb_catalog.metadata")
    return Archive(path, found.group(1))


async def _require_empty(conn: "asyncpg.Connection[asyncpg.Record]") -> None:
    tables = await conn.fetchval(_USER_TABLES)
    if tables:
        raise ToolError(
            f"the target database is not empty ({tables} table(s) in schema public): restore into a new, "
            "empty database"
        )


async def _prepare_timescaledb(conn: "asyncpg.Connection[asyncpg.Record]", archive: Archive) -> None:
    """The extension at the backup's version, in restore mode; ``ToolError`` naming what is missing."""
    state = await conn.fetchrow(_TSDB_STATE)
    assert state is not None
    wanted = archive.timescaledb
    if wanted is None:
        if state["installed"] is not None:
            raise ToolError(
                "the backup is of plain PostgreSQL, but the target database has the TimescaleDB extension: "
                "restore into a database without it (DROP EXTENSION timescaledb in the new, empty database)"
            )
        return
    server = state["installed"] or (state["available"] if state["preloaded"] else None)
    if server != wanted:
        found = f"has TimescaleDB {server}" if server else "runs no TimescaleDB (shared_preload_libraries)"
        image = f"timescale/timescaledb:{wanted}-pg{state['pg_major']}"
        raise ToolError(
            f"the backup was taken with TimescaleDB {wanted}; the target {found}: restore onto TimescaleDB "
            f"{wanted} (image {image}), then ALTER EXTENSION timescaledb UPDATE for a newer one"
        )
    await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    await conn.execute("SELECT timescaledb_pre_restore()")


async def restore(database_url: str, path: Path) -> DatabaseSummary:
    """Restores the archive (see the module); the restored database's summary, or ``ToolError``."""
    pg_restore = pg_tool("pg_restore")
    archive = await read_archive(pg_restore, path)
    conn = await asyncpg.connect(database_url)
    try:
        await _require_empty(conn)
        await _prepare_timescaledb(conn, archive)
        try:
            status, messages = await _pg_restore(pg_restore, database_url, path)
        finally:
            if archive.timescaledb is not None:
                await conn.execute("SELECT timescaledb_post_restore()")
        if status != 0:
            said = " / ".join(messages[-3:]) or "no message"
            raise ToolError(f"pg_restore failed (exit {status}), nothing was restored: {said}")
        if not await is_p1_database(conn):
            raise ToolError(f"{path} restored no p1-telemetry schema")
        await conn.execute("ANALYZE")
        return await summarise(conn)
    finally:
        await conn.close()


async def _pg_restore(pg_restore: str, database_url: str, path: Path) -> tuple[int, list[str]]:
    conn = libpq_connection(database_url)
    argv = [
        pg_restore,
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        f"--dbname={conn.url}",
        str(path),
    ]
    return await run_tool(argv, conn.env)
