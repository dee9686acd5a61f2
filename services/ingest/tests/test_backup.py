"""``p1-ingest backup`` while a real ``p1-ingest serve`` keeps writing, ``p1-ingest restore`` into a new
database, and the restore compared with the source at the backup's snapshot: every batch acknowledged
before the backup started is there, each batch whole or absent, row counts and per-device energy (raw and
every rollup) as computed by hand, the rollups exact, and the restored database takes new uploads and
needs no migration. Runs on plain PostgreSQL (monthly partitions, readings in the DEFAULT partition)
and in the TimescaleDB lane (hypertable, compressed chunks, policies)."""

import re
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from ingest_kit import assert_rollups_exact, chunks, run_compression_policy, run_maintain

from p1_ingest.pgtools import INSTALL_HINT
from p1_schema.migrate import migrate
from p1_servicekit.testing import (
    CLEAN_EXITS,
    ServiceProcess,
    assert_no_secret,
    console_script,
    free_port,
    wait_until,
)
from p1_servicekit.testing_db import PgCluster, create_database, drop_database, pg_server_url, with_database

DEVICES: Final = ("bk-meter-1", "bk-meter-2", "bk-meter-3")
# History: a reading every 10 minutes (600 W: 0.1 kWh each) from 40 to 15 days ago, uploaded before the
# backup: on TimescaleDB its chunks get compressed, on plain PostgreSQL most of it lands in a month
# without a partition, the DEFAULT partition.
HISTORY_STEP: Final = timedelta(minutes=10)
HISTORY_N: Final = 25 * 144
HISTORY_KWH: Final = 0.1
# Live: a reading every second (3,600 W: 0.001 kWh each) from 10 days ago, LIVE_BATCH per upload, sent
# one after the other per device while the backup runs.
LIVE_BATCH: Final = 40
LIVE_KWH: Final = 0.001
MAX_BATCHES: Final = 2000
WRITE_DEADLINE_S: Final = 120


def history(device_start: datetime) -> list[dict[str, Any]]:
    return [
        {
            "ts": (device_start + i * HISTORY_STEP).isoformat(),
            "power_w": 600.0,
            "import_kwh": round(500 + i * HISTORY_KWH, 1),
            "export_kwh": 0.0,
        }
        for i in range(HISTORY_N)
    ]


def history_last_kwh() -> float:
    return round(500 + (HISTORY_N - 1) * HISTORY_KWH, 1)


def live_kwh(n: int) -> float:
    """The n-th live reading's counter: 1 kWh above the history's last (five quiet days), then 1 Wh/s."""
    return round(history_last_kwh() + 1 + n * LIVE_KWH, 3)


def live_batch(live_start: datetime, index: int) -> list[dict[str, Any]]:
    first = index * LIVE_BATCH
    return [
        {
            "ts": (live_start + timedelta(seconds=n)).isoformat(),
            "power_w": 3600.0,
            "import_kwh": live_kwh(n),
            "export_kwh": 0.0,
        }
        for n in range(first, first + LIVE_BATCH)
    ]


@dataclass
class Acked:
    index: int
    sent: float  # time.monotonic() before the request
    acked: float  # after its 200


@dataclass
class Writer:
    """One device's edge: uploads live batches one after the other until stopped (bounded in count
    and time), recording when each was sent and acknowledged."""

    base_url: str
    device: str
    live_start: datetime
    stop: threading.Event
    acked: list[Acked] = field(default_factory=list)
    failure: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + WRITE_DEADLINE_S
        with httpx.Client(base_url=self.base_url, headers=auth(self.device), timeout=30) as client:
            for index in range(MAX_BATCHES):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                sent = time.monotonic()
                r = post(client, self.device, live_batch(self.live_start, index))
                if r.status_code != 200 or r.json() != {"accepted": LIVE_BATCH, "duplicates": 0}:
                    self.failure = f"batch {index}: {r.status_code} {r.text}"
                    return
                self.acked.append(Acked(index, sent, time.monotonic()))


def auth(device: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{device}"}


def post(client: httpx.Client, device: str, rows: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/v1/samples", json={"device_id": device, "samples": rows}, headers=auth(device))


def serve(url: str) -> ServiceProcess:
    port = free_port()
    tokens = ",".join(f"tok-{d}:{d}" for d in DEVICES)
    env = {"DATABASE_URL": url, "DEVICE_TOKENS": tokens, "DEVICE_TOKENS_FILE": "", "LOG_LEVEL": "WARNING"}
    # The writers upload back to back (beyond an edge's 20 requests/s): the rate limit is not tested here.
    env |= {"RATE_LIMIT_PER_S": "10000", "RATE_LIMIT_BURST": "10000"}
    return ServiceProcess([console_script("p1-ingest"), "serve", "--port", str(port)], env, port)


def p1_ingest(url: str, *args: str, path: str = "/usr/bin:/bin") -> "subprocess.CompletedProcess[str]":
    env = {"PATH": path, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [console_script("p1-ingest"), *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
async def databases() -> AsyncIterator[tuple[str, str]]:
    """A migrated source database and an empty target one, of this test's own."""
    source = await create_database(pg_server_url(), prefix="p1_bk_src")
    target = await create_database(pg_server_url(), prefix="p1_bk_dst")
    try:
        await migrate(source)
        yield source, target
    finally:
        await drop_database(source)
        await drop_database(target)


@pytest.fixture
def source_ingest(databases: tuple[str, str]) -> Iterator[ServiceProcess]:
    proc = serve(databases[0]).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def summary_of(output: str) -> str:
    """The database summary a backup or restore printed (schema version … storage)."""
    found = re.search(r"(schema version \d+, .*)$", output, re.MULTILINE)
    assert found, output
    return found.group(1)


def upload_history(base_url: str, start: datetime) -> None:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for device in DEVICES:
            rows = history(start)
            for k in range(0, len(rows), 1000):
                r = client.post(
                    "/v1/samples",
                    json={"device_id": device, "samples": rows[k : k + 1000]},
                    headers=auth(device),
                )
                assert r.status_code == 200, r.text
                assert r.json()["accepted"] == len(rows[k : k + 1000])


def backup_while_writing(
    base_url: str, source: str, live_start: datetime, into: Path
) -> tuple[list[Writer], float, float, "subprocess.CompletedProcess[str]"]:
    """Writers upload continuously; the backup runs once each has had batches acknowledged, and writing
    goes on until each has sent a batch after it ended. Returns the writers and the backup's run."""
    stop = threading.Event()
    writers = [Writer(base_url, d, live_start, stop) for d in DEVICES]
    threads = [threading.Thread(target=w.run, name=f"writer-{w.device}") for w in writers]
    for t in threads:
        t.start()
    try:
        wait_until(
            lambda: all(len(w.acked) >= 3 or w.failure for w in writers), 60, "writes before the backup"
        )
        started = time.monotonic()
        done = p1_ingest(source, "backup", str(into))
        ended = time.monotonic()
        wait_until(
            lambda: all(w.failure or (w.acked and w.acked[-1].sent > ended) for w in writers),
            60,
            "writes after the backup",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert [w.failure for w in writers] == [None] * len(writers)
    assert done.returncode == 0, done.stderr
    return writers, started, ended, done


async def batches_present(conn: Any, device: str, live_start: datetime) -> list[tuple[int, int]]:
    rows = await conn.fetch(
        """SELECT floor(extract(epoch FROM ts - $2) / $3)::int AS batch, count(*) AS n FROM samples
           WHERE device_id = $1 AND ts >= $2 GROUP BY 1 ORDER BY 1""",
        device,
        live_start,
        LIVE_BATCH,
    )
    return [(r["batch"], r["n"]) for r in rows]


async def energy(conn: Any, device: str) -> dict[str, float]:
    """The device's imported energy from the raw good readings and from each rollup (one epoch)."""
    out = {
        "raw": await conn.fetchval(
            "SELECT max(import_kwh) - min(import_kwh) FROM samples WHERE device_id = $1 AND flag IS NULL",
            device,
        )
    }
    for table in ("rollup_15m", "rollup_1h", "rollup_1d"):
        out[table] = await conn.fetchval(
            f"SELECT max(import_kwh_max) - min(import_kwh_min) FROM {table} WHERE device_id = $1", device
        )
    return out


async def check_device(src: Any, dst: Any, writer: Writer, started: float, ended: float) -> int:
    """One device of the restore against its writer's record and the source; returns its last batch."""
    device = writer.device
    present = await batches_present(dst, device, writer.live_start)
    last = len(present) - 1
    # Whole batches, and a prefix of them: the snapshot of one instant, each batch one commit.
    assert present == [(i, LIVE_BATCH) for i in range(last + 1)], present
    # Everything acknowledged before the backup started is there; nothing first sent after it ended.
    assert last >= max(a.index for a in writer.acked if a.acked < started)
    assert last < min(a.index for a in writer.acked if a.sent > ended)
    stored = HISTORY_N + (last + 1) * LIVE_BATCH
    assert await dst.fetchval("SELECT count(*) FROM samples WHERE device_id = $1", device) == stored
    # By hand: the history's steps of 0.1 kWh, the 1 kWh gap, then 1 Wh per live second.
    by_hand = (HISTORY_N - 1) * HISTORY_KWH + 1 + ((last + 1) * LIVE_BATCH - 1) * LIVE_KWH
    assert await energy(dst, device) == pytest.approx(dict.fromkeys(energy_keys(), by_hand), abs=1e-6)
    await assert_rollups_exact(dst, device)
    newest = await dst.fetchval("SELECT max(ts) FROM samples WHERE device_id = $1", device)
    assert await dst.fetchval("SELECT last_ts FROM devices WHERE device_id = $1", device) == newest
    # The source at the snapshot: every row up to the restored newest one, no more, no less.
    same = "SELECT count(*), sum(import_kwh), sum(power_w) FROM samples WHERE device_id = $1 AND ts <= $2"
    assert tuple(await src.fetchrow(same, device, newest)) == tuple(await dst.fetchrow(same, device, newest))
    return last


def list_dir(path: Path) -> list[Path]:
    return sorted(path.iterdir())


def energy_keys() -> tuple[str, ...]:
    return ("raw", "rollup_15m", "rollup_1h", "rollup_1d")


async def prepare_storage(conn: Any, on_timescaledb: bool) -> int:
    """What makes each storage's restore worth testing; returns the compressed chunks (TimescaleDB)."""
    if on_timescaledb:
        await run_compression_policy(conn)
        compressed = sum(c["is_compressed"] for c in await chunks(conn))
        assert compressed >= 2
        return compressed
    assert await conn.fetchval("SELECT count(*) FROM samples_default") > 0
    return 0


async def check_storage(src: Any, dst: Any, target: str, on_timescaledb: bool, compressed: int) -> None:
    """The storage layout came back whole: hypertable, compressed chunks and policy, or the partitions,
    the DEFAULT partition's rows and the migrations' function and trigger, and maintain works on it."""
    if on_timescaledb:
        assert sum(c["is_compressed"] for c in await chunks(dst)) == compressed
        assert await dst.fetchval(
            """SELECT compression_enabled FROM timescaledb_information.hypertables
               WHERE hypertable_name = 'samples'"""
        )
        assert (
            await dst.fetchval(
                """SELECT count(*) FROM timescaledb_information.jobs
               WHERE proc_name = 'policy_compression' AND hypertable_name = 'samples'"""
            )
            == 1
        )
    else:
        parts = """SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_inherits i
                   JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'samples'::regclass"""
        assert await dst.fetchval(parts) == await src.fetchval(parts)
        assert await dst.fetchval("SELECT count(*) FROM samples_default") > 0
    # The writer guard of migration 0004/0005 (a trigger and its function) is in force.
    with pytest.raises(asyncpg.PostgresError) as refused:
        await dst.execute("UPDATE devices SET updated_at = now()")
    assert refused.value.sqlstate == "57P03"
    run_maintain(target)  # partitions from the DEFAULT partition's months, or both TimescaleDB policies
    if not on_timescaledb:
        assert await dst.fetchval("SELECT count(*) FROM samples_default") == 0


def check_restored_takes_uploads(
    target: str, live_start: datetime, history_start: datetime, last: dict[str, int]
) -> None:
    proc = serve(target).start()
    try:
        with httpx.Client(base_url=proc.base_url, timeout=60) as client:
            for device, j in last.items():
                r = post(client, device, live_batch(live_start, j + 1))
                assert r.json() == {"accepted": LIVE_BATCH, "duplicates": 0}, r.text
                r = post(client, device, live_batch(live_start, j))
                assert r.json() == {"accepted": 0, "duplicates": LIVE_BATCH}, r.text
            # A late reading between two old ones (in a compressed chunk on TimescaleDB) and a replay.
            old = history(history_start)[100]
            late = {**old, "ts": (datetime.fromisoformat(old["ts"]) + HISTORY_STEP / 2).isoformat()}
            late["import_kwh"] = old["import_kwh"] + HISTORY_KWH / 2
            r = post(client, DEVICES[0], [late, old])
            assert r.json() == {"accepted": 1, "duplicates": 1}, r.text
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()
    migrated = p1_ingest(target, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "0 migration(s) applied" in migrated.stdout


async def test_a_backup_taken_while_ingest_writes_restores_everything_committed_before_it(
    databases: tuple[str, str], source_ingest: ServiceProcess, on_timescaledb: bool, tmp_path: Path
) -> None:
    source, target = databases
    now = datetime.now(UTC).replace(microsecond=0)
    history_start, live_start = now - timedelta(days=40), now - timedelta(days=10)
    upload_history(source_ingest.base_url, history_start)
    src = await asyncpg.connect(source)
    dst = await asyncpg.connect(target)
    try:
        compressed = await prepare_storage(src, on_timescaledb)
        writers, started, ended, done = backup_while_writing(
            source_ingest.base_url, source, live_start, tmp_path
        )
        # The backup really overlapped the writes.
        assert any(started < a.acked < ended for w in writers for a in w.acked)
        (archive,) = list_dir(tmp_path)
        restored = p1_ingest(target, "restore", str(archive))
        assert restored.returncode == 0, restored.stderr
        # What the backup said its snapshot held is what the restore holds.
        assert summary_of(restored.stdout) == summary_of(done.stdout)
        last = {w.device: await check_device(src, dst, w, started, ended) for w in writers}
        await check_storage(src, dst, target, on_timescaledb, compressed)
    finally:
        await src.close()
        await dst.close()
    check_restored_takes_uploads(target, live_start, history_start, last)


# --- the command's edges: secrets, missing programs, refusals, retention ---------------------------

PASSWORD: Final = "bk/Pw+7%x:y@z"


def recording_tools(directory: Path, log: Path) -> str:
    """A PATH whose pg_dump and pg_restore record their arguments and environment's keys, then run the
    real programs: what ``ps`` would show of them."""
    directory.mkdir()
    for name in ("pg_dump", "pg_restore"):
        real = subprocess.run(
            ["sh", "-c", f"command -v {name}"], capture_output=True, text=True
        ).stdout.strip()
        assert real, f"{name} is needed for this test"
        script = directory / name
        script.write_text(
            f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" >>{log}\nenv | cut -d= -f1 >>{log}\nexec {real} "$@"\n'
        )
        script.chmod(0o755)
    return f"{directory}:/usr/bin:/bin"


async def test_the_password_travels_in_the_environment_never_in_arguments_or_output(tmp_path: Path) -> None:
    cluster = PgCluster(password=PASSWORD).init().start()
    try:
        assert quote(PASSWORD, safe="") in cluster.url
        conn = await asyncpg.connect(cluster.url)
        await conn.execute("CREATE DATABASE restored")
        await conn.close()
        await migrate(cluster.url)
        log = tmp_path / "argv.log"
        path = recording_tools(tmp_path / "bin", log)
        done = p1_ingest(cluster.url, "backup", str(tmp_path / "one.dump"), path=path)
        assert done.returncode == 0, done.stderr
        restored = p1_ingest(
            with_database(cluster.url, "restored"), "restore", str(tmp_path / "one.dump"), path=path
        )
        assert restored.returncode == 0, restored.stderr
        recorded = log.read_text()
        assert "--snapshot=" in recorded  # the recording saw the real calls
        assert "PGPASSWORD" in recorded.splitlines()
        assert_no_secret(
            {
                "argv": recorded,
                "backup": done.stdout + done.stderr,
                "restore": restored.stdout + restored.stderr,
            },
            [PASSWORD],
        )
        assert "postgresql://postgres:***@127.0.0.1" in restored.stdout
    finally:
        cluster.remove()


def test_missing_client_programs_are_named_with_what_to_install(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    for args, program in (
        (["backup", str(tmp_path)], "pg_dump"),
        (["restore", str(tmp_path / "x.dump")], "pg_restore"),
    ):
        done = p1_ingest(databases[0], *args, path=str(empty))
        assert done.returncode == 1
        assert done.stderr.splitlines() == [f"p1-ingest: {program} not found on PATH: {INSTALL_HINT}"]
    assert "apt-get install postgresql-client" in INSTALL_HINT
    assert list_dir(tmp_path) == [empty]  # nothing written


async def test_restore_refuses_a_target_it_would_not_restore_into_whole(
    databases: tuple[str, str], on_timescaledb: bool, tmp_path: Path
) -> None:
    source, target = databases
    archive = tmp_path / "b.dump"
    assert p1_ingest(source, "backup", str(archive)).returncode == 0
    again = p1_ingest(source, "backup", str(archive))  # never overwritten
    assert (again.returncode, again.stderr.strip()) == (
        1,
        f"p1-ingest: {archive} exists: a backup never overwrites a file",
    )
    into_source = p1_ingest(source, "restore", str(archive))
    assert into_source.returncode == 1
    assert "the target database is not empty" in into_source.stderr
    not_a_backup = tmp_path / "x.dump"
    not_a_backup.write_bytes(b"PGDMP but not really")
    bad = p1_ingest(target, "restore", str(not_a_backup))
    assert bad.returncode == 1
    assert bad.stderr.startswith("p1-ingest: pg_restore: error:"), bad.stderr
    if on_timescaledb:
        # The machine's own PostgreSQL has the extension's files but does not preload it.
        plain = await create_database("postgresql://postgres@127.0.0.1:5432/postgres", prefix="p1_bk_plain")
        try:
            refused = p1_ingest(plain, "restore", str(archive))
        finally:
            await drop_database(plain)
        assert refused.returncode == 1
        assert (
            "the backup was taken with TimescaleDB 2.28.3; the target runs no TimescaleDB" in refused.stderr
        )
    conn = await asyncpg.connect(target)
    try:
        assert await conn.fetchval("SELECT to_regclass('samples')") is None  # nothing was restored
    finally:
        await conn.close()


def test_keep_days_removes_only_this_commands_old_backups(databases: tuple[str, str], tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old = [f"p1-{(now - timedelta(days=d)).strftime('%Y%m%dT%H%M%SZ')}.dump" for d in (9, 8)]
    young = f"p1-{(now - timedelta(days=6)).strftime('%Y%m%dT%H%M%SZ')}.dump"
    stale_partial = f"p1-{(now - timedelta(days=30)).strftime('%Y%m%dT%H%M%SZ')}.dump.partial"
    other = "p1-keep-me.dump"
    for name in (*old, young, stale_partial, other):
        (tmp_path / name).write_bytes(b"x")
    done = p1_ingest(databases[0], "backup", "--keep-days", "7", str(tmp_path))
    assert done.returncode == 0, done.stderr
    names = [p.name for p in list_dir(tmp_path)]
    (written,) = [n for n in names if n not in (young, other)]
    assert re.fullmatch(r"p1-\d{8}T\d{6}Z\.dump", written)
    assert sorted(names) == sorted([written, young, other])
    assert f"removed 3 older backup(s): {', '.join(sorted([*old, stale_partial]))}" in done.stdout
