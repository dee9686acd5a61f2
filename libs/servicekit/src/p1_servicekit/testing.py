"""Helpers for tests against real parts: throwaway databases and real service processes.

Imported only by tests and benchmarks; nothing in a service imports it.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import asyncpg
import httpx

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Server options of the lane's PostgreSQL (scripts/timescaledb.sh sets them: the TimescaleDB preload), so
# that a test's own PgCluster runs the same code path as the lane's server.
TEST_PG_OPTIONS_ENV = "TEST_PG_OPTIONS"
# Set to 1 by scripts/timescaledb.sh for the TimescaleDB lane: a test that needs TimescaleDB then fails
# instead of skipping when the database has none (the lane must not quietly test plain PostgreSQL).
TEST_TIMESCALEDB_ENV = "TEST_TIMESCALEDB"
# uvicorn re-raises SIGTERM after its graceful shutdown, so a clean stop may report -15.
CLEAN_EXITS = (0, -signal.SIGTERM)


def pg_server_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


def timescaledb_lane() -> bool:
    """True in the TimescaleDB lane (``scripts/timescaledb.sh run``)."""
    return os.environ.get(TEST_TIMESCALEDB_ENV) == "1"


async def has_timescaledb(database_url: str) -> bool:
    """True when the database runs the TimescaleDB extension (then migration 0001 made ``samples`` a
    hypertable; see its TimescaleDB branch)."""
    conn = await asyncpg.connect(database_url)
    try:
        return bool(
            await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
        )
    finally:
        await conn.close()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def create_database(server_url: str, prefix: str = "p1_test") -> str:
    """Creates a fresh, empty database on the server of ``server_url`` and returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(database_url: str) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    admin = with_database(database_url, "postgres")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.05) -> None:
    """Polls ``predicate`` until it is true; fails with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(step_s)


def console_script(name: str) -> str:
    """Path of a console script of the venv that runs the tests."""
    return str(Path(sys.executable).with_name(name))


@dataclass
class ServiceProcess:
    """A real service process (uvicorn under our CLI) on a free port of 127.0.0.1."""

    argv: Sequence[str]
    env: Mapping[str, str]
    port: int
    ready_path: str | None = "/readyz"
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0, wait: bool = True) -> "ServiceProcess":
        """Spawns the process; waits for ``ready_path`` unless ``wait`` is false (then call
        :meth:`wait_ready` later, e.g. after spawning the other processes, to start them in parallel)."""
        env = {**os.environ, **self.env}
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            list(self.argv),
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait and self.ready_path is not None:
            self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                return httpx.get(self.base_url + str(self.ready_path), timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout_s, f"{self.base_url}{self.ready_path} to answer 200")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:]

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)
        if self._log is not None:
            self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


_TCP_ESTABLISHED = "01"


def established_peers(port: int) -> set[int]:
    """The client ports of the established IPv4 TCP connections whose local port is ``port``, as the
    kernel lists them (/proc/net/tcp): what a server still holds, whatever its own bookkeeping says."""
    peers = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state == _TCP_ESTABLISHED and int(local.rsplit(":", 1)[1], 16) == port:
            peers.add(int(remote.rsplit(":", 1)[1], 16))
    return peers


def pg_bindir() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian layout), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


class PgCluster:
    """A throwaway PostgreSQL cluster of a test's own on a free port of 127.0.0.1.

    ``init()`` then ``start()``; ``stop()``/``start()`` simulate an outage; ``remove()`` stops it and
    deletes its files. Under root the binaries run as the ``postgres`` user (initdb refuses root).
    It starts with the lane's server options (``TEST_PG_OPTIONS``), e.g. TimescaleDB preloaded.
    """

    def __init__(self, bindir: Path | None = None, password: str | None = None) -> None:
        """With ``password``, TCP connections need it (scram-sha-256); the Unix socket stays trust."""
        found = bindir or pg_bindir()
        if found is None:
            raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bindir = found
        # A short path on purpose: the server's Unix socket path must fit in 107 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="p1-pg-", dir="/tmp"))  # nosec B108
        self.data = self.dir / "data"
        self.port = free_port()
        self.password = password
        user = "postgres" if password is None else f"postgres:{quote(password, safe='')}"
        self.url = f"postgresql://{user}@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *argv: str, timeout: float = 60) -> None:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)

    def init(self) -> "PgCluster":
        auth = ["-A", "trust"]
        if self.password is not None:
            pwfile = self.dir / "pw"
            pwfile.write_text(self.password + "\n")
            if os.geteuid() == 0:
                shutil.chown(pwfile, "postgres", "postgres")
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", *auth, "--no-sync")
        return self

    def start(self) -> "PgCluster":
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        lane = os.environ.get(TEST_PG_OPTIONS_ENV, "").strip()
        if lane:
            opts = f"{opts} {lane}"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_server(port: int | None = None) -> ServiceProcess:
    """A throwaway ``redis-server`` of a test's own (no persistence), not yet started.

    Start it with ``.start()`` and wait for it with ``wait_until(lambda: port_open(p.port), …)``.
    """
    p = port or free_port()
    argv = ["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return ServiceProcess(argv, {}, p, ready_path=None)


def secret_spellings(secret: str) -> set[str]:
    """The ways a secret could show in output: as is, URL-encoded (path or form), JSON-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def assert_no_secret(outputs: Mapping[str, str | bytes], secrets: Sequence[str]) -> None:
    """Fails naming the output and the secret when any spelling of a secret is in any output."""
    for where, text in outputs.items():
        data = text if isinstance(text, bytes) else text.encode(errors="replace")
        for secret in secrets:
            for spelling in secret_spellings(secret):
                assert spelling.encode() not in data, f"secret {secret[:4]}… appears in {where}"
