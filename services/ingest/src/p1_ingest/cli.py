"""``p1-ingest serve | migrate | maintain``."""

import argparse
import asyncio
import sys

from pydantic import ValidationError

from p1_servicekit.logging import configure_logging
from p1_servicekit.serve import serve
from p1_servicekit.settings import ServiceSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="p1-ingest", description="p1-telemetry ingest service")
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
        print(f"p1-ingest: maintenance done; {report.summary()}")
        for warning in report.warnings():
            print(f"p1-ingest: warning: {warning}", file=sys.stderr)
        return 0
    from .migrate import migrate

    applied = asyncio.run(migrate(settings.database_url))
    names = ", ".join(applied) or "none pending"
    print(f"p1-ingest: {len(applied)} migration(s) applied: {names}")
    return 0
