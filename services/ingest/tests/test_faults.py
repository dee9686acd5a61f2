"""Failure modes with real processes: Redis down or hanging, PostgreSQL stopped and started again
mid-run (a throwaway cluster of this test's own), and a graceful shutdown with a request in flight."""

import asyncio
import json
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from ingest_kit import until_a_request_waits_on_a_lock

from p1_schema.migrate import migrate
from p1_servicekit.testing import (
    CLEAN_EXITS,
    ServiceProcess,
    console_script,
    eventually,
    free_port,
    wait_until,
)
from p1_servicekit.testing_db import PgCluster, pg_bindir


def batch(device: str, n: int, start: datetime) -> bytes:
    """``n`` readings a second from ``start``; the counter is the same function of time in every batch
    (3.6 kW from 2026-01-01), so batches of one device continue each other."""
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    samples = [
        {
            "ts": (start + timedelta(seconds=i)).isoformat(),
            "power_w": 10,
            "import_kwh": 1 + ((start - origin).total_seconds() + i) / 1000,
            "export_kwh": 0,
        }
        for i in range(n)
    ]
    return json.dumps({"device_id": device, "samples": samples}).encode()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in metrics")


def serve(env: dict[str, str]) -> ServiceProcess:
    port = free_port()
    return ServiceProcess([console_script("p1-ingest"), "serve", "--port", str(port)], env, port)


# --- Redis -----------------------------------------------------------------------------------------


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: a hung Redis."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():  # bounded by the fixture's lifetime
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


@pytest.mark.parametrize("redis", ["refused", "hanging"])
def test_redis_down_or_hanging_never_fails_or_delays_ingest(
    database_url: str, redis: str, blackhole: int
) -> None:
    port = free_port() if redis == "refused" else blackhole
    dev = f"redis-{redis}-{uuid.uuid4().hex[:6]}"
    proc = serve(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "REDIS_TIMEOUT_S": "0.2",
            "DEVICE_TOKENS": f"t:{dev}",
        }
    ).start()
    try:
        start = datetime(2026, 5, 1, tzinfo=UTC)
        for k in range(3):
            began = time.monotonic()
            r = httpx.post(
                proc.base_url + "/v1/samples",
                content=batch(dev, 50, start + timedelta(minutes=k)),
                headers=auth("t"),
                timeout=10,
            )
            elapsed = time.monotonic() - began
            assert r.status_code == 200, r.text
            assert r.json()["accepted"] >= 1
            # REDIS_TIMEOUT_S is 0.2 s; the bound leaves room for a loaded CI machine, and a hung Redis
            # without the guard would block for far longer.
            assert elapsed < 3.0, f"ingest took {elapsed:.2f}s with Redis {redis}"
        text = httpx.get(proc.base_url + "/metrics").text
        assert metric(text, 'p1_redis_errors_total{service="ingest"}') >= 3
        assert metric(text, 'p1_redis_up{service="ingest"}') == 0
        assert httpx.get(proc.base_url + "/readyz").status_code == 200  # Redis never makes us unready
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()
    assert proc.logs().count("redis unavailable") == 1, "logged once per outage"


# --- PostgreSQL stopped and started again ----------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries not installed")
    c = PgCluster()
    try:
        c.init().start()
        yield c
    finally:
        c.remove()


async def test_postgres_stopped_then_started_again(cluster: PgCluster) -> None:
    await migrate(cluster.url)
    dev = f"pg-{uuid.uuid4().hex[:6]}"
    proc = serve(
        {
            "DATABASE_URL": cluster.url,
            "DEVICE_TOKENS": f"t:{dev}",
            "RETRY_AFTER_S": "3",
            "DB_ACQUIRE_TIMEOUT_S": "1",
        }
    ).start()
    start = datetime(2026, 6, 1, tzinfo=UTC)
    try:
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=15) as client:
            first = batch(dev, 100, start)
            assert (await client.post("/v1/samples", content=first, headers=auth("t"))).status_code == 200

            await asyncio.to_thread(cluster.stop)
            second = batch(dev, 100, start + timedelta(minutes=5))
            r = await client.post("/v1/samples", content=second, headers=auth("t"))
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "3"
            assert r.headers["content-type"] == "application/problem+json"
            assert "Traceback" not in r.text
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/healthz")).status_code == 200

            await asyncio.to_thread(cluster.start)
            answers: list[httpx.Response] = []

            async def stored() -> bool:  # the edge's retry loop: the pool must recover by itself
                answers.append(await client.post("/v1/samples", content=second, headers=auth("t")))
                assert answers[-1].status_code in (200, 503), answers[-1].text
                return answers[-1].status_code == 200

            await eventually(stored, 30, "ingest to recover after PostgreSQL came back", step_s=0.2)
            assert answers[-1].json() == {"accepted": 100, "duplicates": 0}
            assert (await client.get("/readyz")).status_code == 200
            replay = await client.post("/v1/samples", content=second, headers=auth("t"))
            assert replay.json() == {"accepted": 0, "duplicates": 100}
            assert metric((await client.get("/metrics")).text, 'p1_db_errors_total{service="ingest"}') >= 1
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()
    conn = await asyncpg.connect(cluster.url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM samples WHERE device_id = $1", dev) == 200
        assert await conn.fetchval("SELECT sum(n) FROM rollup_15m WHERE device_id = $1", dev) == 200
    finally:
        await conn.close()
    logs = proc.logs()
    # An outage is expected: answered 503 and logged as a warning, never as an unhandled error.
    # (asyncpg's own pool logs its reconnect attempts with a traceback; that is not ours.)
    assert "unhandled error" not in logs, logs
    assert "Exception in ASGI application" not in logs, logs


# --- graceful shutdown -----------------------------------------------------------------------------


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def test_sigterm_finishes_the_request_in_flight(database_url: str, db: Any) -> None:
    dev = f"term-{uuid.uuid4().hex[:6]}"
    proc = serve({"DATABASE_URL": database_url, "DEVICE_TOKENS": f"t:{dev}"}).start()
    start = datetime(2026, 7, 1, tzinfo=UTC)
    holder = await asyncpg.connect(database_url)
    try:
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=30) as client:
            assert (
                await client.post("/v1/samples", content=batch(dev, 1, start), headers=auth("t"))
            ).status_code == 200
            tx = holder.transaction()
            await tx.start()
            await holder.execute("SELECT 1 FROM devices WHERE device_id = $1 FOR UPDATE", dev)
            in_flight = asyncio.create_task(
                client.post(
                    "/v1/samples", content=batch(dev, 500, start + timedelta(hours=1)), headers=auth("t")
                )
            )
            await until_a_request_waits_on_a_lock(db, "the request to reach the database")
            proc.signal(signal.SIGTERM)

            def refusing() -> bool:  # shutdown has begun: no new connections
                try:
                    httpx.get(proc.base_url + "/healthz", timeout=0.5)
                except httpx.TransportError:
                    return True
                return False

            await asyncio.to_thread(wait_until, refusing, 10, "the server to stop accepting connections")
            assert not in_flight.done()
            await tx.rollback()
            r = await in_flight
            assert r.status_code == 200, r.text
            assert r.json() == {"accepted": 500, "duplicates": 0}
    finally:
        await holder.close()
        code = proc.stop()
    assert code in CLEAN_EXITS, proc.logs()
    assert await db.fetchval("SELECT count(*) FROM samples WHERE device_id = $1", dev) == 501
