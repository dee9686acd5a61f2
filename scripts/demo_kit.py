"""The processes of `make demo` (scripts/demo.py) and its storage: the PostgreSQL and Redis it finds, or
throwaway servers under .demo/ that it starts (and stops again with everything else), and `make
demo-reset`, which removes what the demo keeps between runs."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import asyncpg

from p1_servicekit.testing import port_open

DEMO = Path(__file__).resolve().parents[1] / ".demo"  # the default home: logs, spool, meter state
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEMO_DATABASE = "p1_demo"
# The demo's own logical database on a local Redis: not 0 (yours), not 9 (the tests', TEST_REDIS_DB).
DEMO_REDIS_DB = 15
THROWAWAY_PG_PORT, THROWAWAY_REDIS_PORT = 54329, 63799
LOCAL_REDIS_PORT = 6379


class DemoError(Exception):
    """Something the user must fix; printed without a traceback."""


@dataclass
class Processes:
    """Every process the demo started, stopped in reverse order."""

    home: Path = DEMO
    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)
    cleanups: list[tuple[str, list[str]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.home / f"{name}.log").open("ab")
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

    def alive(self) -> bool:
        """True while every process runs; else raises DemoError naming the first that has exited."""
        for name, proc in self.running:
            if proc.poll() is not None:
                raise DemoError(f"{name} exited with {proc.returncode}; see {self.home / name}.log")
        return True

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
        note = f"local PostgreSQL, database {DEMO_DATABASE}"
        return asyncio.run(_ensure_database(LOCAL_PG, DEMO_DATABASE)), note
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
    data = procs.home / "pg"
    port = THROWAWAY_PG_PORT
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
                *("-D", str(data), "-l", str(procs.home / "postgres.log"), "-w"),
                *("-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        procs.cleanups.append(("postgres", [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]))
    server = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return asyncio.run(_ensure_database(server, DEMO_DATABASE)), f"throwaway cluster in {data} (port {port})"


def find_redis(procs: Processes) -> tuple[str | None, str]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], "REDIS_URL"
    if port_open(LOCAL_REDIS_PORT):
        url = f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/{DEMO_REDIS_DB}"
        return url, f"local Redis, logical database {DEMO_REDIS_DB}"
    server = shutil.which("redis-server")
    if server is None:
        return None, "none (optional: `apt-get install redis-server` makes realtime and caching faster)"
    port = THROWAWAY_REDIS_PORT
    procs.start(
        "redis", [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    )
    return f"redis://127.0.0.1:{port}/{DEMO_REDIS_DB}", f"throwaway redis-server (port {port})"


# What the demo keeps in its home between runs; `make demo-reset` removes exactly these.
HOME_FILES = ("edge-spool.sqlite", "edge-spool.sqlite-wal", "edge-spool.sqlite-shm", "meter-state.json")


async def _drop_demo_database() -> bool:
    conn = await asyncpg.connect(LOCAL_PG, timeout=5)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DEMO_DATABASE)
        await conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
    finally:
        await conn.close()
    return bool(exists)


def _flush_demo_redis() -> None:
    import redis

    with redis.Redis(host="127.0.0.1", port=LOCAL_REDIS_PORT, db=DEMO_REDIS_DB, socket_timeout=5) as client:
        client.flushdb()


def reset(home: Path) -> list[str]:
    """Removes what `make demo` keeps: its database, its Redis keys, its spool, meter state, logs and
    throwaway cluster. Storage named by DATABASE_URL / REDIS_URL is the user's own and left alone."""
    done: list[str] = []
    if os.environ.get("DATABASE_URL"):
        done.append("DATABASE_URL is set: that database is yours, left alone")
    elif asyncio.run(_pg_usable(LOCAL_PG)):
        dropped = asyncio.run(_drop_demo_database())
        what = "dropped" if dropped else "was not there"
        done.append(f"database {DEMO_DATABASE} {what} (local PostgreSQL)")
    if os.environ.get("REDIS_URL"):
        done.append("REDIS_URL is set: that Redis is yours, left alone")
    elif port_open(LOCAL_REDIS_PORT):
        _flush_demo_redis()
        done.append(f"local Redis: logical database {DEMO_REDIS_DB} emptied")
    cluster = home / "pg"
    if (cluster / "postmaster.pid").exists():
        raise DemoError(f"the demo's throwaway cluster in {cluster} is running: stop the demo first")
    shutil.rmtree(cluster, ignore_errors=True)
    for path in [*(home / name for name in HOME_FILES), *home.glob("*.log")]:
        path.unlink(missing_ok=True)
    done.append(f"{home}: spool, meter state, logs and throwaway cluster removed")
    return done
