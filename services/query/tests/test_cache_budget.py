"""Issue 11 §6: one read token cannot flush the cache. A throwaway Redis with a small ``maxmemory`` and
the policy the deploy files set (volatile-lru), a real query process on it, and one token asking for
answer after distinct answer: its answers beyond its budget are served but not cached, so another token's
cached answers and every device's latest reading stay. And where Redis does fill up (many tokens), only
keys with a TTL are evicted: the latest readings, written by ingest without one, survive."""

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from query_probes import metric
from query_scenes import HASHED_TOKEN, query_env
from redis.asyncio import Redis

from p1_query.cache import MAX_ENTRY_BYTES
from p1_schema.redis import latest_key
from p1_servicekit.testing import (
    CLEAN_EXITS,
    ServiceProcess,
    console_script,
    free_port,
    port_open,
    redis_server,
    wait_until,
)

MAXMEMORY = "4mb"
BUDGET = 512 * 1024
FLOOD = 60  # distinct answers of ~80 kB: ~5 MB, more than the whole Redis holds
LATEST = {latest_key(d): d for d in ("q-swap", "q-dst", "q-cap")}
FLOODER = {"Authorization": "Bearer tok-all"}
OTHER = {"Authorization": f"Bearer {HASHED_TOKEN}"}  # sees q-dst and q-swap


@pytest.fixture(scope="module")
def small_redis() -> Iterator[str]:
    proc = redis_server()
    proc.argv = [*proc.argv, "--maxmemory", MAXMEMORY, "--maxmemory-policy", "volatile-lru"]
    proc.start()
    try:
        wait_until(lambda: port_open(proc.port), 10, "redis-server")
        yield f"redis://127.0.0.1:{proc.port}/0"
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def budgeted(loaded: str, small_redis: str) -> Iterator[ServiceProcess]:
    port = free_port()
    env = {**query_env(loaded, small_redis), "CACHE_BUDGET_BYTES": str(BUDGET)}
    proc = ServiceProcess([console_script("p1-query"), "serve", "--port", str(port)], env, port).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


@pytest.fixture
async def redis(small_redis: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(small_redis)
    yield client
    await client.aclose()


def _latest(power_w: float) -> bytes:
    ts = "2026-11-29T13:12:34.000000Z"
    return json.dumps({"ts": ts, "power_w": power_w, "import_kwh": 1.0, "export_kwh": 0.0}).encode()


def _minutes(proc: ServiceProcess, device: str, start: datetime, hours: float, auth: dict[str, str]) -> int:
    """A past 1-minute series (~220 bytes a minute); returns the answer's size."""
    params = {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat(), "bucket": "1m"}
    r = httpx.get(f"{proc.base_url}/v1/devices/{device}/series", params=params, headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    return len(r.content)


def _stores(proc: ServiceProcess, result: str) -> float:
    return metric(proc.base_url, f'p1_query_cache_stores_total{{result="{result}"}}')


async def _keys(redis: Redis, pattern: str) -> set[bytes]:
    return {k async for k in redis.scan_iter(match=pattern)}


async def test_one_token_cannot_flush_another_tokens_answers_or_the_latest_readings(
    budgeted: ServiceProcess, redis: Redis
) -> None:
    for key, device in LATEST.items():
        await redis.set(key, _latest(100.0 + len(device)))  # as ingest writes them: no TTL
    swap = datetime(2026, 5, 5, 0, 0, tzinfo=UTC)
    for k in range(3):
        _minutes(budgeted, "q-swap", swap + timedelta(hours=k), 1, OTHER)
    others = await _keys(redis, "p1:q:q-swap:*")
    assert len(others) == 3

    dst = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    stored, refused = _stores(budgeted, "stored"), _stores(budgeted, "over_budget")
    sizes = [_minutes(budgeted, "q-dst", dst + timedelta(minutes=k), 6, FLOODER) for k in range(FLOOD)]
    assert sum(sizes) > 4 * 1024 * 1024  # unbounded, this alone would overflow the 4 MB Redis
    kept = _stores(budgeted, "stored") - stored
    # The budget is per UTC day: the flood spans at most two such windows (should it cross midnight).
    assert 0 < kept * min(sizes) <= 2 * BUDGET
    assert _stores(budgeted, "over_budget") - refused == FLOOD - kept
    assert len(await _keys(redis, "p1:q:q-dst:*")) == kept

    assert await _keys(redis, "p1:q:q-swap:*") == others
    for key in LATEST:
        assert await redis.get(key) is not None, key
    info = await redis.info("stats")
    assert info["evicted_keys"] == 0
    # Every key the query service wrote expires; only ingest's latest readings do not.
    async for key in redis.scan_iter():
        if key.decode() not in LATEST:
            assert await redis.ttl(key) > 0, key


async def test_an_answer_larger_than_an_entry_is_served_but_not_cached(
    budgeted: ServiceProcess, redis: Redis
) -> None:
    too_large = _stores(budgeted, "too_large")
    start = datetime(2026, 3, 24, tzinfo=UTC)
    size = _minutes(budgeted, "q-dst", start, 6.5 * 24, FLOODER)  # 9,360 minutes
    assert size > MAX_ENTRY_BYTES
    assert _stores(budgeted, "too_large") == too_large + 1
    assert not await _keys(redis, f"p1:q:q-dst:*series:{start.isoformat()}*")


async def test_a_full_redis_evicts_cache_keys_never_the_latest_readings(
    budgeted: ServiceProcess, redis: Redis
) -> None:
    """Many tokens together can fill Redis: volatile-lru then evicts what has a TTL (every cache key)."""
    await redis.set(latest_key("q-swap"), _latest(4321.0))
    filler = b"x" * (256 * 1024)
    for k in range(40):  # 10 MB of cache-like keys into 4 MB
        await redis.set(f"p1:q:filler:{k}", filler, ex=3600)
    info = await redis.info("stats")
    assert info["evicted_keys"] > 0
    for key in LATEST:
        assert await redis.get(key) is not None, key
    async with httpx.AsyncClient(headers=OTHER, timeout=10) as client:
        r = await client.get(budgeted.base_url + "/v1/devices/q-swap/realtime")
    assert r.json()["power_w"] == 4321.0  # still from Redis
