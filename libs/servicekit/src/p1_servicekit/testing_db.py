"""Throwaway PostgreSQL for tests and benchmarks: databases on the lane's server, and clusters of a
test's own (to stop and start, for outages). Imported only by tests and benchmarks."""

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from p1_servicekit.testing import free_port

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Server options of the lane's PostgreSQL (scripts/timescaledb.sh sets them: the TimescaleDB preload), so
# that a test's own PgCluster runs the same code path as the lane's server.
TEST_PG_OPTIONS_ENV = "TEST_PG_OPTIONS"
# Set to 1 by scripts/timescaledb.sh for the TimescaleDB lane: a test that needs TimescaleDB then fails
# instead of skipping when the database has none (the lane must not quietly test plain PostgreSQL).
TEST_TIMESCALEDB_ENV = "TEST_TIMESCALEDB"


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
