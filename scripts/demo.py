"""`make demo`: the whole system on this machine — simulator → edge → ingest → query, and notify — as real
processes. Notify's warnings and results are printed in the terminal (a JSON webhook of the script's own).

Storage is found in this order: DATABASE_URL; the local PostgreSQL on 127.0.0.1:5432 (database p1_demo,
created when missing); a throwaway cluster under .demo/ from the installed PostgreSQL binaries. Redis
likewise (REDIS_URL; 127.0.0.1:6379, logical database 15; a throwaway redis-server), and Redis is
optional. Before the live readings, the meter's past year goes through ingest (scripts/demo_backfill.py);
a later run continues the same meter. Ctrl-C (or --duration) stops every process this script started, and
nothing is left running. `--reset` (`make demo-reset`) removes what the demo keeps between runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
from demo_backfill import PROFILE, backfill, describe
from demo_kit import DEMO, DemoError, Processes, find_postgres, find_redis, reset
from demo_notify import CAP_KW, LIVE_PROFILE, start_webhook, write_config

from p1_edge.spoolfile import stats_in_file
from p1_servicekit.testing import port_open, wait_until

BIN = Path(sys.executable).parent
# The demo's tariff plan (issue 15): a Flemish fixed contract for every device, so costs and bills are real.
PLAN_FILE = Path(__file__).resolve().parents[1] / "deploy/tariffs/flanders-fixed.yaml"
DEVICE, WRITE_TOKEN, READ_TOKEN = "demo", "demo-write", "demo-read"
# The demo's logs (.demo/*.log) are read by a person: one readable line each.
LOGS = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "text"}
TZ = ZoneInfo("Europe/Brussels")


@dataclass(frozen=True)
class Storage:
    database_url: str
    db_note: str
    redis_note: str


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


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies inside it (what a user types)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def banner(storage: Storage, args: argparse.Namespace, backfilled: str) -> str:
    q = f"http://127.0.0.1:{args.query_port}"
    dev = f"{q}/v1/devices/{DEVICE}"
    auth = f"-H 'Authorization: Bearer {READ_TOKEN}'"
    midnight = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    day = f"start={quote(midnight.isoformat())}&end={quote((midnight + timedelta(days=1)).isoformat())}"
    month = midnight.replace(day=1)
    year_ago = month.replace(year=month.year - 1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    year = f"start={quote(year_ago.isoformat())}&end={quote(next_month.isoformat())}"
    home = shown_path(args.dir)
    plans = f"{shown_path(BIN)}/p1-ingest tariffs show {DEVICE}"
    return f"""
p1-telemetry demo is running
  meter simulator  http://127.0.0.1:{args.sim_port}/api/v1/data   (a year of {PROFILE}, live {LIVE_PROFILE})
  notify           http://127.0.0.1:{args.notify_port}/metrics   (warns above {CAP_KW} kW: printed here)
  ingest           http://127.0.0.1:{args.ingest_port}   (device token {WRITE_TOKEN})
  query            {q}   (read token {READ_TOKEN})
  dashboard        {q}/   (open it in a browser; sign in with the read token {READ_TOKEN})
  edge metrics     http://127.0.0.1:{args.edge_metrics_port}/metrics
  PostgreSQL       {storage.db_note}
  Redis            {storage.redis_note}
  logs             {home}/*.log
  tariff plan      {shown_path(PLAN_FILE)} (example figures; {plans} to see it)
  {backfilled}

Try:
  curl -s {auth} {dev}/realtime
  curl -s {auth} '{dev}/series?{day}&bucket=15m'
  curl -s {auth} '{dev}/series?{year}&bucket=1mo'
  curl -s {auth} '{dev}/capacity?month={midnight:%Y-%m}'
  SPOOL_PATH={home}/edge-spool.sqlite {shown_path(BIN)}/p1-edge status

Ctrl-C stops everything; `make demo` again continues the same meter, `make demo-reset` starts clean.
"""


def ticker(args: argparse.Namespace, procs: Processes, after: str | None) -> int:
    """Shows the newest reading every second; returns how many were live (newer than ``after``)."""
    url = f"http://127.0.0.1:{args.query_port}/v1/devices/{DEVICE}/realtime"
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    backfilled = datetime.fromisoformat(after) if after else None
    started = time.monotonic()
    live = 0
    with httpx.Client(timeout=2.0) as client:
        while args.duration is None or time.monotonic() - started < args.duration:
            procs.alive()
            try:
                r = client.get(url, headers=headers)
                if r.status_code == 200:
                    s = r.json()
                    line = (
                        f"live {s['ts']}  power {s['power_w']:>7.0f} W  import {s['import_kwh']:.3f} kWh  "
                        f"export {s['export_kwh']:.3f} kWh  age {s['age_s']:.1f} s"
                    )
                    live += backfilled is None or datetime.fromisoformat(s["ts"]) > backfilled
                else:
                    line = f"waiting for the first reading… (query answered {r.status_code})"
            except httpx.HTTPError as exc:
                line = f"query not answering: {exc.__class__.__name__}"
            end = "\n" if not sys.stdout.isatty() else ""
            print(f"\r{line:<110}", end=end, flush=True)
            time.sleep(1.0)
    print()
    return live


def start_servers(args: argparse.Namespace, procs: Processes) -> Storage:
    """Storage found or started, the schema migrated, ingest and query ready."""
    for port in (args.sim_port, args.ingest_port, args.query_port, args.edge_metrics_port, args.notify_port):
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
    # The file is the truth: loading it on every run replaces the plans with the same ones.
    subprocess.run(
        [str(BIN / "p1-ingest"), "tariffs", "load", str(PLAN_FILE)],
        env={**os.environ, **server_env},
        check=True,
        timeout=120,
    )
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
    hook = start_webhook()  # a daemon thread: gone with the script
    config = write_config(args.dir / "notify.yaml", DEVICE, hook.port)
    procs.start(
        "notify",
        [str(BIN / "p1-notify"), "run", "--port", str(args.notify_port)],
        {**server_env, "NOTIFY_CONFIG": str(config)},
    )
    wait_for("ingest", lambda: http_ok(f"http://127.0.0.1:{args.ingest_port}/readyz"), procs)
    wait_for("notify", lambda: http_ok(f"http://127.0.0.1:{args.notify_port}/readyz"), procs)
    wait_for("query", lambda: http_ok(f"http://127.0.0.1:{args.query_port}/readyz"), procs)
    return Storage(database_url, db_note, redis_note)


def start_edge(args: argparse.Namespace, procs: Processes) -> None:
    """The edge, before its meter: it first uploads what it kept from the last run (readings that must be
    stored before the backfill looks for the newest one), then polls once the simulator is up."""
    spool = args.dir / "edge-spool.sqlite"
    env = {
        "P1_HOST": f"127.0.0.1:{args.sim_port}",
        "P1_API": "v1",
        "INGEST_URL": f"http://127.0.0.1:{args.ingest_port}",
        "DEVICE_TOKEN": WRITE_TOKEN,
        "DEVICE_ID": DEVICE,
        "SPOOL_PATH": str(spool),
        "METRICS_PORT": str(args.edge_metrics_port),
        "METRICS_HOST": "127.0.0.1",
        # The ticker shows every second's reading; an edge on a Pi keeps the 5 s default (its CPU cost).
        "UPLOAD_INTERVAL_S": "1",
        **LOGS,
    }
    procs.start("edge", [str(BIN / "p1-edge"), "run"], env)
    kept = stats_in_file(spool)
    if kept is not None and kept.depth:
        print(f"uploading the {kept.depth} readings the edge kept from the last run…", flush=True)
        wait_for("the edge's spool to drain", lambda: getattr(stats_in_file(spool), "depth", 1) == 0, procs)


def start_simulator(args: argparse.Namespace, procs: Processes, state: Path) -> None:
    argv = ["simulate", "--port", str(args.sim_port), "--profile", LIVE_PROFILE, "--state", str(state)]
    procs.start("simulator", [str(BIN / "p1-edge"), *argv])
    wait_for("the simulator", lambda: port_open(args.sim_port), procs)


def run(args: argparse.Namespace, procs: Processes) -> None:
    storage = start_servers(args, procs)
    start_edge(args, procs)
    print("backfilling the meter's past through ingest…", flush=True)
    ingest = f"http://127.0.0.1:{args.ingest_port}"
    sent, registers, continued = backfill(ingest, WRITE_TOKEN, DEVICE, storage.database_url)
    state = args.dir / "meter-state.json"
    state.write_text(registers.dumps())
    start_simulator(args, procs, state)
    print(banner(storage, args, describe(sent, continued)), flush=True)
    live = ticker(args, procs, sent.last)
    if args.duration is not None and live == 0:
        raise DemoError(f"no live reading came back through the query API; see {args.dir}/*.log")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--reset", action="store_true", help="remove what the demo keeps, then exit")
    parser.add_argument("--dir", type=Path, default=DEMO, help="logs, spool and meter state (.demo)")
    parser.add_argument("--sim-port", type=int, default=8090)
    parser.add_argument("--ingest-port", type=int, default=8001)
    parser.add_argument("--query-port", type=int, default=8002)
    parser.add_argument("--edge-metrics-port", type=int, default=9101)
    parser.add_argument("--notify-port", type=int, default=8003)
    args = parser.parse_args()
    args.dir = args.dir.resolve()
    return args


def main() -> int:
    args = parse_args()
    if args.reset:
        try:
            print("\n".join(f"make demo-reset: {line}" for line in reset(args.dir)))
        except DemoError as exc:
            print(f"make demo-reset: {exc}", file=sys.stderr)
            return 1
        return 0
    args.dir.mkdir(exist_ok=True)
    procs = Processes(args.dir)
    interrupted = False

    def on_signal(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        run(args, procs)
    except KeyboardInterrupt:
        interrupted = True
    except (DemoError, subprocess.CalledProcessError, httpx.HTTPError, OSError) as exc:
        print(f"\nmake demo: {exc}", file=sys.stderr)
        return 1
    finally:
        print("\nstopping…", flush=True)
        procs.stop_all()
    print("stopped; nothing left running." if interrupted or args.duration else "", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
