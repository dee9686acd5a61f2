"""``p1-query serve``."""

import argparse

from p1_config.errors import run_command
from p1_config.logging import configured
from p1_query.settings import QuerySettings
from p1_servicekit.serve import add_serve_command, serve_command

PROG = "p1-query"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="p1-telemetry query service")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_command(sub, "query", 8002)
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: _serve(args))


def _serve(args: argparse.Namespace) -> int:
    settings = configured(QuerySettings)  # required fields come from the environment
    return serve_command(args, "p1_query.app:app_from_env", settings.log_level, settings.http_max_concurrency)
