"""``p1-query serve``."""

import argparse

from p1_servicekit.logging import configure_logging
from p1_servicekit.serve import serve
from p1_servicekit.settings import ConfigError, load_settings

from .settings import QuerySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="p1-query", description="p1-telemetry query service")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve the query HTTP API")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8002)
    p_serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args(argv)

    try:
        settings = load_settings(QuerySettings)  # required fields come from the environment
    except ConfigError as exc:  # one line per variable, never its value
        return exc.report("p1-query")
    configure_logging(settings.log_level)
    serve(
        "p1_query.app:app_from_env",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level,
    )
    return 0
