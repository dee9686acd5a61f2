"""``p1-query serve``."""

import argparse

from p1_config.errors import load_settings, run_command
from p1_config.logging import configure_logging
from p1_servicekit.serve import serve

from .settings import QuerySettings

PROG = "p1-query"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="p1-telemetry query service")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve the query HTTP API")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8002)
    p_serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: _serve(args))


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings(QuerySettings)  # required fields come from the environment
    configure_logging(settings.log_level, settings.log_format)
    serve(
        "p1_query.app:app_from_env",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level,
    )
    return 0
