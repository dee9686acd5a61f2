"""``p1-notify run``: follow the configured devices and send their peak warnings and results."""

import argparse
import sys

from p1_config.errors import CONFIG_EXIT, run_command
from p1_config.logging import configured
from p1_notify.config import ConfigFileError, load_config
from p1_notify.settings import NotifySettings
from p1_servicekit.serve import serve

PROG = "p1-notify"
PORT = 8003


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="p1-telemetry notifications (peak guard)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="follow the devices of NOTIFY_CONFIG and notify; serves /metrics")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    settings = configured(NotifySettings)
    try:
        load_config(settings.notify_config)  # a bad file stops the start here, with its line
    except ConfigFileError as exc:
        print(f"{PROG}: configuration error:\n  {exc}", file=sys.stderr)
        return CONFIG_EXIT
    # One process: the follower is not split across workers (replicas are safe: claims are shared).
    serve(
        "p1_notify.app:app_from_env", host=args.host, port=args.port, workers=1, log_level=settings.log_level
    )
    return 0
