"""``p1-ingest serve | migrate | maintain | rebuild DEVICE… | backup PATH | restore PATH``.

A configuration error is one line per problem naming the variable (exit 2, ``p1_config.errors``); a
database that cannot be reached, or a backup or restore that cannot be done, is one line with any URL's
password masked (exit 1). None prints a value or a traceback."""

import argparse
import asyncio
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Final, TypeVar

import asyncpg

from p1_config.errors import run_command
from p1_config.logging import configured
from p1_config.redact import describe_error, redact
from p1_servicekit.serve import add_serve_command, serve_command
from p1_servicekit.settings import ServiceSettings

PROG: Final = "p1-ingest"
T = TypeVar("T")
# Failures of a one-shot command's connection: unreachable, refused, timed out, wrong credentials.
_CONNECT_FAILURES: Final = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="p1-telemetry ingest service")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_command(sub, "ingest", 8001)
    sub.add_parser("migrate", help="apply pending schema migrations (safe to run concurrently)")
    sub.add_parser(
        "maintain",
        help="raw-data retention (RAW_RETENTION_DAYS): partitions ahead and old ones dropped on plain "
        "PostgreSQL; on TimescaleDB the retention policy set and both policies (retention, compression) run",
    )
    p_rebuild = sub.add_parser(
        "rebuild", help="rebuild devices' counter epochs, integrity flags and rollups from their raw readings"
    )
    p_rebuild.add_argument("device_ids", nargs="+", metavar="DEVICE")
    p_backup = sub.add_parser(
        "backup",
        help="the whole database, consistent while ingest writes, into a pg_dump archive (custom format): "
        "PATH is a new file, or a directory where p1-<UTC time>.dump is written",
    )
    p_backup.add_argument("path", type=Path, metavar="PATH")
    p_backup.add_argument(
        "--keep-days",
        type=int,
        metavar="N",
        help="PATH a directory: afterwards remove its backups taken more than N days ago",
    )
    p_restore = sub.add_parser(
        "restore",
        help="a backup into DATABASE_URL's database, which must be empty (TimescaleDB: same version)",
    )
    p_restore.add_argument("path", type=Path, metavar="PATH")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {
        "serve": lambda: _serve(args),
        "maintain": _maintain,
        "rebuild": lambda: _rebuild(args.device_ids),
        "migrate": _migrate,
        "backup": lambda: _backup(args.path, args.keep_days),
        "restore": lambda: _restore(args.path),
    }
    return run_command(PROG, commands[args.command])


def _serve(args: argparse.Namespace) -> int:
    from p1_ingest.settings import IngestSettings

    settings = configured(IngestSettings)  # fail fast, before uvicorn starts workers
    return serve_command(args, "p1_ingest.app:app_from_env", settings.log_level)


def _maintain() -> int:
    from p1_ingest.maintain import maintain
    from p1_ingest.settings import MaintainSettings

    settings = configured(MaintainSettings)
    report = _run_on_database(settings, maintain(settings.database_url, settings.raw_retention_days))
    if report is None:
        return 1
    print(f"{PROG}: maintenance done; {report.summary()}")
    for warning in report.warnings():
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    return 0


def _migrate() -> int:
    from p1_ingest.rebuild import migrate
    from p1_ingest.settings import IntegritySettings

    # MAX_POWER_W: the rebuilds a migration queues judge readings by it.
    settings = configured(IntegritySettings)
    applied = _run_on_database(settings, migrate(settings.database_url, limits=settings.limits))
    if applied is None:
        return 1
    print(f"{PROG}: {len(applied)} migration(s) applied: {', '.join(applied) or 'none pending'}")
    return 0


def _rebuild(device_ids: list[str]) -> int:
    from p1_ingest.rebuild import rebuild_devices
    from p1_ingest.settings import IntegritySettings

    settings = configured(IntegritySettings)
    reports = _run_on_database(settings, rebuild_devices(settings.database_url, device_ids, settings.limits))
    if reports is None:
        return 1
    for r in reports:
        print(f"{PROG}: {r.device_id}: {r.outcome}, {r.readings} reading(s) replayed")
    return 0


def _backup(path: Path, keep_days: int | None) -> int:
    from p1_ingest.backup import backup

    if keep_days is not None and keep_days < 1:
        print(f"{PROG}: --keep-days must be at least 1", file=sys.stderr)
        return 2
    settings = configured(ServiceSettings)
    report = _run_tool_command(settings, backup(settings.database_url, path, keep_days))
    if report is None:
        return 1
    for warning in report.warnings:
        print(f"{PROG}: {warning}", file=sys.stderr)
    for line in report.lines():
        print(f"{PROG}: {line}")
    return 0


def _restore(path: Path) -> int:
    from p1_ingest.restore import restore

    settings = configured(ServiceSettings)
    summary = _run_tool_command(settings, restore(settings.database_url, path))
    if summary is None:
        return 1
    print(f"{PROG}: restored {path} into {redact(settings.database_url)}: {summary.line()}")
    return 0


def _run_tool_command(settings: ServiceSettings, work: Awaitable[T]) -> T | None:
    """``_run_on_database`` for backup and restore: their own failures are one line too."""
    from p1_ingest.pgtools import ToolError

    try:
        return _run_on_database(settings, work)
    except ToolError as exc:
        print(f"{PROG}: {redact(str(exc))}", file=sys.stderr)
        return None


def _run_on_database(settings: ServiceSettings, work: Awaitable[T]) -> T | None:
    """Runs a one-shot command's work; None (after one line on stderr) when the database fails it."""

    async def run() -> T:
        return await work

    try:
        return asyncio.run(run())
    except _CONNECT_FAILURES as exc:
        print(
            f"{PROG}: database {redact(settings.database_url)} failed: {describe_error(exc)}",
            file=sys.stderr,
        )
        return None
