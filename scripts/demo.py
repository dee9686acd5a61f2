"""`make demo`: the whole system on this machine — simulator → edge → ingest → query — as real processes.

Storage is found in this order: DATABASE_URL; the local PostgreSQL on 127.0.0.1:5432 (database p1_demo,
created when missing); a throwaway cluster under .demo/ from the installed PostgreSQL binaries. Redis
likewise (REDIS_URL; 127.0.0.1:6379; a throwaway redis-server), and Redis is optional. Ctrl-C (or
--duration) stops every process this script started, and nothing is left running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO
from urllib.parse import quote
from zoneinfo import ZoneInfo

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"
BIN = Path(sys.executable).parent
DEVICE, WRITE_TOKEN, READ_TOKEN = "demo", "demo-write", "demo-read"
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


class DemoError(Exception):
    """Something the user must fix; printed without a traceback."""


@dataclass
class Processes:
    """Every process the demo started, stopped in reverse order."""

    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)
    cleanups: list[tuple[str, list[str]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (DEMO / f"{name}.log").open("ab")
        self.logs.append(log)
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
        )
        self.running.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.running:
            if proc.poll() is not None:
                raise DemoError(f"{name} exited with {proc.returncode}; see .demo/{name}.log")

    def stop_all(self) -> None:
        for _, proc in reversed(self.running):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc in reversed(self.running):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for _, argv in reversed(self.cleanups):
            subprocess.run(argv, capture_output=True, timeout=30, check=False)
        for log in self.logs:
            log.close()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def wait_for(what: str, probe: object, timeout_s: float, procs: Processes) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        procs.check_alive()
        if callable(probe) and probe():
            return
        time.sleep(0.2)
    raise DemoError(f"timed out waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


async def _pg_usable(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def _ensure_database(server_url: str, name: str) -> str:
    conn = await asyncpg.connect(server_url, timeout=5)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def find_postgres(procs: Processes) -> tuple[str, str]:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], "DATABASE_URL"
    if asyncio.run(_pg_usable(LOCAL_PG)):
        return asyncio.run(_ensure_database(LOCAL_PG, "p1_demo")), "local PostgreSQL, database p1_demo"
    initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or (
        [p] if (p := shutil.which("initdb")) else []
    )
    if not initdbs:
        raise DemoError(
            "No PostgreSQL found: set DATABASE_URL, or install PostgreSQL "
            "(Debian/Ubuntu: `sudo apt-get install postgresql`), or run the server side with "
            "`docker compose up` (see README, Deployment)."
        )
    bindir = Path(initdbs[-1]).parent
    data = DEMO / "pg"
    port = 54329
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    if not port_open(port):
        subprocess.run(
            [
                str(bindir / "pg_ctl"),
                *("-D", str(data), "-l", str(DEMO / "postgres.log"), "-w"),
                *("-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        procs.cleanups.append(("postgres", [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]))
    server = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return asyncio.run(_ensure_database(server, "p1_demo")), f"throwaway cluster in .demo/pg (port {port})"


def find_redis(procs: Processes) -> tuple[str | None, str]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], "REDIS_URL"
    if port_open(6379):
        return "redis://127.0.0.1:6379/0", "local Redis"
    server = shutil.which("redis-server")
    if server is None:
        return None, "none (optional: `apt-get install redis-server` makes realtime and caching faster)"
    port = 63799
    procs.start(
        "redis", [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    )
    return f"redis://127.0.0.1:{port}/0", f"throwaway redis-server (port {port})"


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
            procs.check_alive()
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--sim-port", type=int, default=8090)
    parser.add_argument("--ingest-port", type=int, default=8001)
    parser.add_argument("--query-port", type=int, default=8002)
    parser.add_argument("--edge-metrics-port", type=int, default=9101)
    args = parser.parse_args()
    DEMO.mkdir(exist_ok=True)
    procs = Processes()
    interrupted = False

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for port in (args.sim_port, args.ingest_port, args.query_port, args.edge_metrics_port):
            if port_open(port):
                raise DemoError(f"port {port} is in use; stop what uses it or pass another --*-port")
        database_url, db_note = find_postgres(procs)
        redis_url, redis_note = find_redis(procs)
        server_env = {"DATABASE_URL": database_url, "LOG_LEVEL": "INFO"}
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
        wait_for("ingest", lambda: http_ok(f"http://127.0.0.1:{args.ingest_port}/readyz"), 30, procs)
        wait_for("query", lambda: http_ok(f"http://127.0.0.1:{args.query_port}/readyz"), 30, procs)
        wait_for("the simulator", lambda: port_open(args.sim_port), 30, procs)
        procs.start(
            "edge",
            [str(BIN / "p1-edge"), "run"],
            {
                "P1_HOST": f"127.0.0.1:{args.sim_port}",
                "P1_API": "v1",
                "INGEST_URL": f"http://127.0.0.1:{args.ingest_port}",
                "DEVICE_TOKEN": WRITE_TOKEN,
                "DEVICE_ID": DEVICE,
                "SPOOL_PATH": str(DEMO / "edge-spool.sqlite"),
                "METRICS_PORT": str(args.edge_metrics_port),
                "METRICS_HOST": "127.0.0.1",
            },
        )
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
