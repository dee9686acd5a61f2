"""Server-side outages under a live edge: PostgreSQL stopped for 30 s, Redis killed.

Both use servers of the test's own (a throwaway PostgreSQL cluster, a throwaway redis-server), so
stopping them disturbs nothing else. Each ends with the exactly-once check against the raw export.
"""

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from e2e_kit import Stack, StackFactory, check_exactly_once, metric_sum, spool_depth

from p1_servicekit.testing import console_script, port_open, redis_server, wait_until
from p1_servicekit.testing_db import PgCluster

OUTAGE_S = 30.0


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    c = PgCluster()
    try:
        c.init().start()
        subprocess.run(
            [console_script("p1-ingest"), "migrate"],
            env={**os.environ, "DATABASE_URL": c.url},
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield c
    finally:
        c.remove()


def readyz(base_url: str) -> int:
    try:
        return httpx.get(base_url + "/readyz", timeout=5).status_code
    except httpx.HTTPError:
        return 0


@pytest.mark.timeout(180)
def test_postgres_down_30_s_then_everything_drains(cluster: PgCluster, make_stack: StackFactory) -> None:
    stack: Stack = make_stack(cluster.url).start()  # no Redis: PostgreSQL is the only store
    assert stack.sim is not None
    assert stack.ingest is not None
    assert stack.query is not None
    stack.wait_streaming(3)
    errors_before = stack.upload_errors()

    cluster.stop()
    down_at = time.monotonic()
    # Ingest refuses (503 + Retry-After), the edge backs off and keeps spooling; neither service is ready.
    wait_until(lambda: stack.upload_errors() > errors_before, 20, "uploads refused during the outage")
    assert readyz(stack.ingest.base_url) == 503
    assert readyz(stack.query.base_url) == 503
    depth_then = spool_depth(stack.spool)
    wait_until(lambda: time.monotonic() - down_at >= OUTAGE_S, OUTAGE_S + 5, "the end of the outage", 0.5)
    # a reading a second kept coming in while the database was away
    assert spool_depth(stack.spool) >= depth_then + OUTAGE_S * 0.6
    assert stack.ingest.proc is not None
    assert stack.ingest.proc.poll() is None, "ingest must survive a database outage"

    cluster.start()
    wait_until(lambda: readyz(stack.ingest.base_url) == 200, 30, "ingest ready again")
    wait_until(lambda: readyz(stack.query.base_url) == 200, 30, "query ready again")
    stack.quiesce_meter()
    stack.drain(60)
    assert stack.terminate_edge() == 0
    assert check_exactly_once(stack.sim.served(), stack.export()) >= OUTAGE_S + 3


@pytest.mark.timeout(120)
def test_redis_killed_system_keeps_working_from_postgres(database_url: str, make_stack: StackFactory) -> None:
    redis = redis_server()
    redis.start()
    try:
        wait_until(lambda: port_open(redis.port), 20, "redis-server")
        stack: Stack = make_stack(database_url, redis_url=f"redis://127.0.0.1:{redis.port}/0").start()
        assert stack.sim is not None
        stack.wait_streaming(3)
        # Redis is in use: ingest writes the latest reading there and query reads it from there.
        wait_until(
            lambda: (
                metric_sum(stack.query_metrics(), "p1_redis_up", service="query") == 1
                and stack.query_get(f"/v1/devices/{stack.device}/realtime").status_code == 200
            ),
            20,
            "realtime through Redis",
        )
        assert metric_sum(stack.ingest_metrics(), "p1_redis_up", service="ingest") == 1

        redis.kill()
        killed_at = time.time()

        def fresh_realtime() -> bool:
            r = stack.query_get(f"/v1/devices/{stack.device}/realtime")
            assert r.status_code == 200, r.text
            body = r.json()
            return datetime.fromisoformat(body["ts"]).timestamp() >= killed_at + 2

        # Readings keep flowing and realtime keeps answering, now from PostgreSQL.
        wait_until(fresh_realtime, 30, "a realtime reading newer than the Redis kill", 0.5)
        assert metric_sum(stack.ingest_metrics(), "p1_redis_up", service="ingest") == 0
        assert metric_sum(stack.query_metrics(), "p1_redis_up", service="query") == 0
        stack.quiesce_meter()
        stack.drain()
        assert stack.terminate_edge() == 0
        assert check_exactly_once(stack.sim.served(), stack.export()) >= 6
    finally:
        redis.stop()
