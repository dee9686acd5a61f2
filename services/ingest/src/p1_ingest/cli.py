"""``p1-ingest serve | migrate | maintain | rebuild DEVICE…``."""

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from p1_servicekit.logging import configure_logging
from p1_servicekit.serve import serve
from p1_servicekit.settings import ServiceSettings

if TYPE_CHECKING:
    from .integrity import Limits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="p1-ingest", description="p1-telemetry ingest service")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve the ingest HTTP API")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8001)
    p_serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    sub.add_parser("migrate", help="apply pending schema migrations (safe to run concurrently)")
    sub.add_parser("maintain", help="create partitions ahead, drop raw data older than RAW_RETENTION_DAYS")
    p_rebuild = sub.add_parser(
        "rebuild", help="rebuild devices' counter epochs, integrity flags and rollups from their raw readings"
    )
    p_rebuild.add_argument("device_ids", nargs="+", metavar="DEVICE")
    args = parser.parse_args(argv)

    try:
        settings = ServiceSettings()
    except ValidationError as exc:
        print(f"p1-ingest: configuration error:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if args.command == "serve":
        from .settings import IngestSettings

        try:
            IngestSettings()  # fail fast, before uvicorn starts workers
        except ValidationError as exc:
            print(f"p1-ingest: configuration error:\n{exc}", file=sys.stderr)
            return 2
        serve(
            "p1_ingest.app:app_from_env",
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=settings.log_level,
        )
        return 0
    if args.command == "maintain":
        from .maintain import MaintainSettings, maintain

        try:
            days = MaintainSettings().raw_retention_days
        except ValidationError as exc:
            print(f"p1-ingest: configuration error:\n{exc}", file=sys.stderr)
            return 2
        report = asyncio.run(maintain(settings.database_url, days))
        print(
            f"p1-ingest: maintenance done ({'timescaledb' if report.timescaledb else 'partitions'}): "
            f"created {report.created or 'none'}, dropped {report.dropped or 'none'}, "
            f"{report.default_rows_deleted} old row(s) deleted from samples_default"
        )
        return 0
    return _judging_readings(args, settings.database_url)


def _judging_readings(args: argparse.Namespace, database_url: str) -> int:
    """``migrate`` and ``rebuild``: both may judge readings (a migration's rebuilds), by MAX_POWER_W."""
    from .settings import IntegritySettings

    try:
        limits = IntegritySettings().limits
    except ValidationError as exc:
        print(f"p1-ingest: configuration error:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "rebuild":
        return asyncio.run(_rebuild(database_url, args.device_ids, limits))
    from .migrate import migrate

    applied = asyncio.run(migrate(database_url, limits))
    names = ", ".join(applied) or "none pending"
    print(f"p1-ingest: {len(applied)} migration(s) applied: {names}")
    return 0


async def _rebuild(database_url: str, device_ids: list[str], limits: "Limits") -> int:
    import asyncpg

    from .rebuild import rebuild_device

    conn = await asyncpg.connect(database_url)
    try:
        for device_id in device_ids:
            report = await rebuild_device(conn, device_id, limits, datetime.now(UTC))
            print(f"p1-ingest: {device_id}: {report.outcome}, {report.readings} reading(s) replayed")
    finally:
        await conn.close()
    return 0
