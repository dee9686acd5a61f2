"""``p1-ingest serve | migrate | maintain | rebuild DEVICE…``.

A configuration error is one line per problem naming the variable (exit 2); a database that cannot be
reached is one line with its URL's password masked (exit 1). Neither prints a value or a traceback."""

import argparse
import asyncio
import sys
from collections.abc import Awaitable
from typing import Final, TypeVar

import asyncpg

from p1_servicekit.logging import configure_logging, describe_error, mask_url
from p1_servicekit.serve import serve
from p1_servicekit.settings import ConfigError, ServiceSettings, load_settings

PROG: Final = "p1-ingest"
T = TypeVar("T")
# Failures of a one-shot command's connection: unreachable, refused, timed out, wrong credentials.
_CONNECT_FAILURES: Final = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="p1-telemetry ingest service")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve the ingest HTTP API")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8001)
    p_serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "maintain":
            return _maintain()
        if args.command == "rebuild":
            return _rebuild(args.device_ids)
        return _migrate()
    except ConfigError as exc:
        return exc.report(PROG)


def _serve(args: argparse.Namespace) -> int:
    from .settings import IngestSettings

    settings = load_settings(IngestSettings)  # fail fast, before uvicorn starts workers
    configure_logging(settings.log_level)
    serve(
        "p1_ingest.app:app_from_env",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level,
    )
    return 0


def _maintain() -> int:
    from .maintain import MaintainSettings, maintain

    settings = load_settings(MaintainSettings)
    configure_logging(settings.log_level)
    report = _run_on_database(settings, maintain(settings.database_url, settings.raw_retention_days))
    if report is None:
        return 1
    print(f"{PROG}: maintenance done; {report.summary()}")
    for warning in report.warnings():
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    return 0


def _migrate() -> int:
    from .rebuild import migrate
    from .settings import IntegritySettings

    # MAX_POWER_W: the rebuilds a migration queues judge readings by it.
    settings = load_settings(IntegritySettings)
    configure_logging(settings.log_level)
    applied = _run_on_database(settings, migrate(settings.database_url, limits=settings.limits))
    if applied is None:
        return 1
    print(f"{PROG}: {len(applied)} migration(s) applied: {', '.join(applied) or 'none pending'}")
    return 0


def _rebuild(device_ids: list[str]) -> int:
    from .rebuild import rebuild_devices
    from .settings import IntegritySettings

    settings = load_settings(IntegritySettings)
    configure_logging(settings.log_level)
    reports = _run_on_database(settings, rebuild_devices(settings.database_url, device_ids, settings.limits))
    if reports is None:
        return 1
    for r in reports:
        print(f"{PROG}: {r.device_id}: {r.outcome}, {r.readings} reading(s) replayed")
    return 0


def _run_on_database(settings: ServiceSettings, work: Awaitable[T]) -> T | None:
    """Runs a one-shot command's work; None (after one line on stderr) when the database fails it."""

    async def run() -> T:
        return await work

    try:
        return asyncio.run(run())
    except _CONNECT_FAILURES as exc:
        print(
            f"{PROG}: database {mask_url(settings.database_url)} failed: {describe_error(exc)}",
            file=sys.stderr,
        )
        return None
