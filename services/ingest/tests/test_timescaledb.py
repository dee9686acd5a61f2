"""What only TimescaleDB does, against a real ``p1-ingest serve``: compression by migration 0001's policy,
then duplicates and late readings uploaded into compressed chunks — each reading stored exactly once,
rollups exact. Skipped on plain PostgreSQL; run by the TimescaleDB lane (``make test-timescale``)."""

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from ingest_kit import assert_rollups_exact, chunks, run_compression_policy, run_maintain

from p1_ingest.maintain import COMPRESSION, policy_job
from p1_schema.migrate import migrate
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, eventually, free_port
from p1_servicekit.testing_db import PgCluster, create_database, drop_database, pg_server_url

pytestmark = pytest.mark.usefixtures("needs_timescaledb")

STEP = timedelta(minutes=10)
PER_DAY = 144  # readings in 24 hours, one every STEP
KWH_PER_READING = 0.1  # 600 W for 10 minutes
DAYS = 42
BATCH = 1000


async def is_compressed_hypertable(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(
            await conn.fetchval(
                """SELECT compression_enabled FROM timescaledb_information.hypertables
                   WHERE hypertable_name = 'samples'"""
            )
        )
    finally:
        await conn.close()


async def test_the_lane_stores_in_a_hypertable_and_so_do_the_tests_own_clusters(database_url: str) -> None:
    """The session's database and a fault test's own PgCluster both run migration 0001's TimescaleDB
    branch: the lane never quietly falls back to plain PostgreSQL."""
    assert await is_compressed_hypertable(database_url)
    cluster = PgCluster()
    try:
        cluster.init().start()
        await migrate(cluster.url)
        assert await is_compressed_hypertable(cluster.url)
    finally:
        cluster.remove()


@pytest.fixture
async def tsdb() -> AsyncIterator[str]:
    """A database of this test's own: the chunks it compresses are only its own."""
    url = await create_database(pg_server_url(), prefix="p1_tsdb")
    try:
        await migrate(url)
        yield url
    finally:
        await drop_database(url)


@pytest.fixture
def device() -> str:
    return f"ts-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ingest(tsdb: str, device: str) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(port)],
        {"DATABASE_URL": tsdb, "DEVICE_TOKENS": f"tok:{device}", "LOG_LEVEL": "WARNING"},
        port,
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def readings(start: datetime, n: int) -> list[dict[str, Any]]:
    """A steady 600 W: import grows by exactly KWH_PER_READING per reading."""
    return [
        {
            "ts": (start + i * STEP).isoformat(),
            "power_w": 600,
            "import_kwh": round(1000 + i * KWH_PER_READING, 1),
            "export_kwh": 50.0,
        }
        for i in range(n)
    ]


def upload(client: httpx.Client, device: str, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Uploads in batches as an edge does; returns (accepted, duplicates) summed."""
    accepted = duplicates = 0
    for k in range(0, len(rows), BATCH):
        body = json.dumps({"device_id": device, "samples": rows[k : k + BATCH]})
        r = client.post("/v1/samples", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        accepted += r.json()["accepted"]
        duplicates += r.json()["duplicates"]
    return accepted, duplicates


def chunk_of(all_chunks: list[dict[str, Any]], ts: datetime) -> dict[str, Any]:
    return next(c for c in all_chunks if c["range_start"] <= ts < c["range_end"])


async def test_duplicates_and_late_readings_into_compressed_chunks_are_stored_once(
    tsdb: str, ingest: ServiceProcess, device: str
) -> None:
    start = (datetime.now(UTC) - timedelta(days=DAYS)).replace(minute=0, second=0, microsecond=0)
    rows = readings(start, DAYS * PER_DAY)
    # Every 7th reading of the first 20 days reaches the server only after its chunk was compressed.
    late = set(range(0, 20 * PER_DAY, 7))
    on_time = [r for i, r in enumerate(rows) if i not in late]
    conn = await asyncpg.connect(tsdb)
    try:
        with httpx.Client(base_url=ingest.base_url, headers={"Authorization": "Bearer tok"}, timeout=60) as c:
            assert upload(c, device, on_time) == (len(on_time), 0)

            policy_now = datetime.now(UTC)
            compress_after = await run_compression_policy(conn)
            before = await chunks(conn)
            for chunk in before:  # what the policy compresses: chunks wholly older than compress_after
                assert chunk["is_compressed"] == (chunk["range_end"] <= policy_now - compress_after), chunk
            assert sum(ch["is_compressed"] for ch in before) >= 2
            assert not all(ch["is_compressed"] for ch in before)
            replay = on_time[:2500]
            for r in [rows[i] for i in late] + replay:
                assert chunk_of(before, datetime.fromisoformat(r["ts"]))["is_compressed"], r

            # A replay of readings that all sit in compressed chunks stores nothing.
            assert upload(c, device, replay) == (0, len(replay))
            # The first 20 days again, holes and all: only the holes are new.
            first_days = rows[: 20 * PER_DAY]
            assert upload(c, device, first_days) == (len(late), len(first_days) - len(late))
            assert upload(c, device, first_days) == (0, len(first_days))

            await check_exactly_once(conn, device, rows, start)
            # Recompressing the chunks that took late rows changes nothing either.
            await run_compression_policy(conn)
            assert [ch["is_compressed"] for ch in await chunks(conn)] == [
                ch["is_compressed"] for ch in before
            ]
            assert upload(c, device, first_days) == (0, len(first_days))
            await check_exactly_once(conn, device, rows, start)
    finally:
        await conn.close()


async def check_exactly_once(conn: Any, device: str, rows: list[dict[str, Any]], start: datetime) -> None:
    stored = await conn.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT ts) AS distinct_ts FROM samples WHERE device_id = $1", device
    )
    assert (stored["n"], stored["distinct_ts"]) == (len(rows), len(rows))
    await assert_rollups_exact(conn, device)
    # By hand: the third local day (whole, in a compressed chunk) holds a reading every STEP of its
    # length (24 h, or 23/25 on a DST day), and imports KWH_PER_READING per step between them.
    third, fourth = await conn.fetch(
        """SELECT bucket, n, import_kwh_max - import_kwh_min AS kwh FROM rollup_1d
           WHERE device_id = $1 ORDER BY bucket OFFSET 2 LIMIT 2""",
        device,
    )
    per_day = (fourth["bucket"] - third["bucket"]) // STEP
    assert per_day in (23 * 6, 24 * 6, 25 * 6)
    assert third["n"] == per_day
    assert round(third["kwh"], 9) == round((per_day - 1) * KWH_PER_READING, 9)
    assert await conn.fetchval("SELECT sum(n) FROM rollup_15m WHERE device_id = $1", device) == len(rows)


async def test_background_scheduler_runs_the_policies_or_maintain_says_it_does_not(tsdb: str) -> None:
    """TimescaleDB's own scheduler runs the compression policy. Where its runs fail (TimescaleDB 2.28.3
    on PostgreSQL 15.20: "cannot drop portal", every background job), `p1-ingest maintain` must warn
    and apply the policies itself; that case is an expected failure, any other error a failure."""
    conn = await asyncpg.connect(tsdb)
    try:
        job = int((await policy_job(conn, COMPRESSION))["job_id"])
        await conn.execute("SELECT alter_job($1, next_start => now())", job)

        async def stats() -> Any:
            return await conn.fetchrow(
                "SELECT total_runs, last_run_status FROM timescaledb_information.job_stats WHERE job_id = $1",
                job,
            )

        async def ran() -> bool:
            s = await stats()
            return s is not None and bool(s["total_runs"]) and s["last_run_status"] is not None

        await eventually(ran, 60, "the scheduler to run the compression policy", step_s=0.2)
        s = await stats()
        assert s is not None
        if s["last_run_status"] == "Success":
            return
        error = await conn.fetchval(
            "SELECT err_message FROM timescaledb_information.job_errors WHERE job_id = $1 "
            "ORDER BY start_time DESC LIMIT 1",
            job,
        )
    finally:
        await conn.close()
    assert error is not None
    assert "cannot drop portal" in error, error
    done = run_maintain(tsdb)
    assert "run now: 0 chunk(s) compressed" in done.stdout  # the policy itself works when run by maintain
    assert (
        f"p1-ingest: warning: TimescaleDB's background runs of job {job} (policy_compression) fail "
        f"({error}); maintain ran the policy itself"
    ) in done.stderr
    pytest.xfail(f"TimescaleDB's scheduler cannot run jobs here: {error}")
