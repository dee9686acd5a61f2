"""`make demo`: the whole system on this machine — simulator → edge → ingest → query — as real processes.

Storage is found in this order: DATABASE_URL; the local PostgreSQL on 127.0.0.1:5432 (database p1_demo,
created when missing); a throwaway cluster under .demo/ from the installed PostgreSQL binaries. Redis
likewise (REDIS_URL; 127.0.0.1:6379; a throwaway redis-server), and Redis is optional. Ctrl-C (or
--duration) stops every process this script started, and nothing is left running.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
from demo_kit import DEMO, DemoError, Processes, find_postgres, find_redis

from p1_servicekit.testing import port_open, wait_until

BIN = Path(sys.executable).parent
DEVICE, WRITE_TOKEN, READ_TOKEN = "demo", "demo-write", "demo-read"
# The demo's logs (.demo/*.log) are read by a person: one readable line each.
LOGS = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "text"}


def wait_for(what: str, probe: Callable[[], bool], procs: Processes) -> None:
    """Waits (30 s at most) for ``probe``; fails at once when a process the demo started has exited."""
    try:
        wait_until(lambda: procs.alive() and probe(), 30, what, step_s=0.2)
    except TimeoutError as exc:
        raise DemoError(str(exc)) from None


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def banner(db_note: str, redis_note: str, ports: argparse.Namespace) -> str:
    q = f"http://127.0.0.1:{ports.query_port}"
    auth = f"-H 'Authorization: Bearer {READ_TOKEN}'"
    midnight = datetime.now(ZoneInfo("Europe/Brussels")).replace(hour=0, minute=0, second=0, microsecond=0)
    start = quote(midnight.isoformat())
    end = quote((midnight + timedelta(days=1)).isoformat())
    series = f"{q}/v1/devices/{DEVICE}/series?start={start}&end={end}&bucket=15m"
    return f"""
p1-telemetry demo is running
  meter simulator  http://127.0.0.1:{ports.sim_port}/api/v1/data
  ingest           http://127.0.0.1:{ports.ingest_port}   (device token {WRITE_TOKEN})
  query            {q}   (read token {READ_TOKEN})
  edge metrics     http://127.0.0.1:{ports.edge_metrics_port}/metrics
  PostgreSQL       {db_note}
  Redis            {redis_note}
  logs             .demo/*.log

Try:
  curl -s {auth} {q}/v1/devices/{DEVICE}/realtime
  curl -s {auth} '{series}'
  curl -s {auth} '{q}/v1/devices/{DEVICE}/capacity?month={midnight:%Y-%m}'

Ctrl-C stops everything.
"""


def ticker(ports: argparse.Namespace, procs: Processes, duration_s: float | None) -> int:
    url = f"http://127.0.0.1:{ports.query_port}/v1/devices/{DEVICE}/realtime"
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    started = time.monotonic()
    shown = 0
    with httpx.Client(timeout=2.0) as client:
        while duration_s is None or time.monotonic() - started < duration_s:
            procs.alive()
            try:
                r = client.get(url, headers=headers)
                if r.status_code == 200:
                    s = r.json()
                    line = (
                        f"live {s['ts']}  power {s['power_w']:>7.0f} W  import {s['import_kwh']:.3f} kWh  "
                        f"export {s['export_kwh']:.3f} kWh  age {s['age_s']:.1f} s"
                    )
                    shown += 1
                else:
                    line = f"waiting for the first reading… (query answered {r.status_code})"
            except httpx.HTTPError as exc:
                line = f"query not answering: {exc.__class__.__name__}"
            end = "\n" if not sys.stdout.isatty() else ""
            print(f"\r{line:<110}", end=end, flush=True)
            time.sleep(1.0)
    print()
    return shown


def start_servers(args: argparse.Namespace, procs: Processes) -> tuple[str, str]:
    """Storage found or started, the schema migrated, ingest, query and the simulator ready; returns
    what the banner says about the storage."""
    for port in (args.sim_port, args.ingest_port, args.query_port, args.edge_metrics_port):
        if port_open(port):
            raise DemoError(f"port {port} is in use; stop what uses it or pass another --*-port")
    database_url, db_note = find_postgres(procs)
    redis_url, redis_note = find_redis(procs)
    server_env = {"DATABASE_URL": database_url, **LOGS}
    if redis_url:
        server_env["REDIS_URL"] = redis_url
    subprocess.run(
        [str(BIN / "p1-ingest"), "migrate"], env={**os.environ, **server_env}, check=True, timeout=120
    )
    procs.start("simulator", [str(BIN / "p1-edge"), "simulate", "--port", str(args.sim_port)])
    procs.start(
        "ingest",
        [str(BIN / "p1-ingest"), "serve", "--port", str(args.ingest_port)],
        {**server_env, "DEVICE_TOKENS": f"{WRITE_TOKEN}:{DEVICE}"},
    )
    procs.start(
        "query",
        [str(BIN / "p1-query"), "serve", "--port", str(args.query_port)],
        {**server_env, "READ_TOKENS": f"{READ_TOKEN}:{DEVICE}"},
    )
    wait_for("ingest", lambda: http_ok(f"http://127.0.0.1:{args.ingest_port}/readyz"), procs)
    wait_for("query", lambda: http_ok(f"http://127.0.0.1:{args.query_port}/readyz"), procs)
    wait_for("the simulator", lambda: port_open(args.sim_port), procs)
    return db_note, redis_note


def start_edge(args: argparse.Namespace, procs: Processes) -> None:
    env = {
        "P1_HOST": f"127.0.0.1:{args.sim_port}",
        "P1_API": "v1",
        "INGEST_URL": f"http://127.0.0.1:{args.ingest_port}",
        "DEVICE_TOKEN": WRITE_TOKEN,
        "DEVICE_ID": DEVICE,
        "SPOOL_PATH": str(DEMO / "edge-spool.sqlite"),
        "METRICS_PORT": str(args.edge_metrics_port),
        "METRICS_HOST": "127.0.0.1",
        **LOGS,
    }
    procs.start("edge", [str(BIN / "p1-edge"), "run"], env)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--sim-port", type=int, default=8090)
    parser.add_argument("--ingest-port", type=int, default=8001)
    parser.add_argument("--query-port", type=int, default=8002)
    parser.add_argument("--edge-metrics-port", type=int, default=9101)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    DEMO.mkdir(exist_ok=True)
    procs = Processes()
    interrupted = False

    def on_signal(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        db_note, redis_note = start_servers(args, procs)
        start_edge(args, procs)
        print(banner(db_note, redis_note, args), flush=True)
        shown = ticker(args, procs, args.duration)
        if args.duration is not None and shown == 0:
            raise DemoError("no reading came back through the query API; see .demo/*.log")
    except KeyboardInterrupt:
        interrupted = True
    except (DemoError, subprocess.CalledProcessError) as exc:
        print(f"\nmake demo: {exc}", file=sys.stderr)
        return 1
    finally:
        print("\nstopping…", flush=True)
        procs.stop_all()
    print("stopped; nothing left running." if interrupted or args.duration else "", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
