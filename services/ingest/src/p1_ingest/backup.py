"""``p1-ingest backup PATH [--keep-days N]``: the whole database in one pg_dump archive, consistent while
ingest keeps writing.

**Format: custom** (``pg_dump -Fc``): one compressed file, easy to copy to another server, to checksum and
to expire by name, which pg_restore restores selectively and even in parallel (``-j``) since the file is
seekable. The directory format's advantage, a parallel dump, needs a connection per job for a home
installation's few gigabytes, and a directory is harder to move around whole.

**Consistency.** This command opens a repeatable-read transaction, exports its snapshot and has pg_dump
dump exactly that snapshot (``--snapshot``): every table, partition and chunk as of one instant, the one
printed, ``snapshot_at``. A restore therefore holds every reading committed before that instant, and
nothing committed after — and since ingest answers 200 only after its commit, every batch an edge saw
acknowledged before the backup started. Rollups, devices and raw rows agree, as they did at that instant.
While the snapshot is open the command holds the advisory locks of ``migrate`` and ``maintain`` in
shared mode: neither changes tables (a partition created or dropped, a migration) under the dump.

The file is written as ``NAME.partial`` and renamed when complete: a file with the final name is a whole
backup. Given a directory, the file is named ``p1-<UTC time>.dump``; ``--keep-days N`` then removes the
backups of that directory (by that name only) taken more than N days ago, never the one just written.
"""

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import asyncpg

from p1_contracts.timeform import instant
from p1_ingest.dbsummary import DatabaseSummary, is_p1_database, summarise
from p1_ingest.maintain import ADVISORY_LOCK_KEY as MAINTAIN_LOCK
from p1_ingest.pgtools import ToolError, libpq_connection, pg_tool, run_tool
from p1_schema.migrate import ADVISORY_LOCK_KEY as MIGRATE_LOCK

_STAMP: Final = "%Y%m%dT%H%M%SZ"
_NAME: Final = re.compile(r"^p1-(\d{8}T\d{6}Z)\.dump(\.partial)?$")
PARTIAL: Final = ".partial"


@dataclass
class BackupReport:
    path: Path
    size_bytes: int
    snapshot_at: datetime  # the archive holds everything committed before this instant
    summary: DatabaseSummary  # the database as the snapshot saw it
    warnings: list[str] = field(default_factory=list)  # pg_dump's, passwords masked
    pruned: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"backup written: {self.path} ({self.size_bytes / 1e6:.1f} MB)",
            f"it holds everything committed before {instant(self.snapshot_at)}: {self.summary.line()}",
        ]
        if self.pruned:
            out.append(
                f"removed {len(self.pruned)} older backup(s): {', '.join(p.name for p in self.pruned)}"
            )
        return out


def backup_name(taken: datetime) -> str:
    return f"p1-{taken.astimezone(UTC).strftime(_STAMP)}.dump"


def _target(path: Path, now: datetime, keep_days: int | None) -> Path:
    if path.is_dir():
        path = path / backup_name(now)
    elif keep_days is not None:
        raise ToolError(f"--keep-days needs a directory of backups; {path} is not one")
    if path.exists() or path.with_name(path.name + PARTIAL).exists():
        raise ToolError(f"{path} exists: a backup never overwrites a file")
    if not path.parent.is_dir():
        raise ToolError(f"{path.parent} is not a directory")
    return path


async def backup(
    database_url: str, path: Path, keep_days: int | None = None, now: datetime | None = None
) -> BackupReport:
    """Writes the archive (see the module); ``ToolError`` when it cannot, leaving no file behind."""
    now = now or datetime.now(UTC)
    pg_dump = pg_tool("pg_dump")
    target = _target(path, now, keep_days)
    partial = target.with_name(target.name + PARTIAL)
    conn = await asyncpg.connect(database_url)
    try:
        if not await is_p1_database(conn):
            raise ToolError("the database has no p1-telemetry schema: is DATABASE_URL the right database?")
        await conn.execute(
            "SELECT pg_advisory_lock_shared($1), pg_advisory_lock_shared($2)", MIGRATE_LOCK, MAINTAIN_LOCK
        )
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # The snapshot is taken at this statement's start, after statement_timestamp().
            snapshot, at = await conn.fetchrow("SELECT pg_export_snapshot(), statement_timestamp()")  # type: ignore[misc]
            summary = await summarise(conn)
            report = await _dump(pg_dump, database_url, snapshot, partial)
    finally:
        await conn.close()  # ends the snapshot and releases the locks
    _publish(partial, target)
    result = BackupReport(target, target.stat().st_size, at, summary, report)
    if keep_days is not None:
        result.pruned = prune(target.parent, keep_days, now, keep=target)
    return result


async def _dump(pg_dump: str, database_url: str, snapshot: str, partial: Path) -> list[str]:
    """Runs pg_dump on the exported snapshot; its warnings, or ``ToolError`` (the partial file removed)."""
    conn = libpq_connection(database_url)
    argv = [
        pg_dump,
        "--format=custom",
        "--no-password",
        f"--snapshot={snapshot}",
        f"--file={partial}",
        f"--dbname={conn.url}",
    ]
    status, messages = await run_tool(argv, conn.env)
    if status != 0:
        _discard(partial)
        raise ToolError(f"pg_dump failed (exit {status}): {' / '.join(messages[-3:]) or 'no message'}")
    return messages


def _discard(partial: Path) -> None:
    partial.unlink(missing_ok=True)


def _publish(partial: Path, target: Path) -> None:
    """Makes the complete archive durable, then visible under its final name."""
    with partial.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def prune(directory: Path, keep_days: int, now: datetime, keep: Path) -> list[Path]:
    """Removes this command's backups (``p1-<time>.dump``, and ``.partial`` leftovers) of ``directory``
    taken more than ``keep_days`` before ``now``, except ``keep``; returns what it removed. The time is
    read from the name, not the file's mtime, so a copied backup keeps its age."""
    cutoff = now - timedelta(days=keep_days)
    removed = []
    for entry in sorted(directory.iterdir()):
        m = _NAME.match(entry.name)
        if m is None or entry == keep or not entry.is_file():
            continue
        if datetime.strptime(m.group(1), _STAMP).replace(tzinfo=UTC) < cutoff:
            entry.unlink()
            removed.append(entry)
    return removed
