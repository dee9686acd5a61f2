"""Issue 11 §6: one read token cannot flush the cache. Its distinct past answers are cached only up to
CACHE_BUDGET_BYTES (64 KiB in this suite) per lifetime window; beyond, they are served but not kept, so
another token's cached answer and the device's latest reading (no TTL: out of volatile-lru's reach) stay.
The full-size probe, with a Redis that really fills up and evicts, is
services/query/tests/test_cache_budget.py."""

from datetime import UTC, datetime, timedelta

import redis
from hostile_kit import (
    CACHE_BUDGET_BYTES,
    READ_ALL,
    READ_CACHE,
    WRITE_TOKENS,
    Meter,
    Stack,
    batch,
    get,
    post,
    still_works,
)
from query_probes import metric

DEVICE = "h-cache"
FLOOD = 12


def _minutes(stack: Stack, start: datetime, token: str) -> int:
    """A past 1-minute series of two hours (~26 kB); returns its size."""
    params = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat(), "bucket": "1m"}
    r = get(stack, f"/v1/devices/{DEVICE}/series", params, token=token)
    assert r.status_code == 200, r.text
    return len(r.content)


def _stores(stack: Stack, result: str) -> float:
    return metric(stack.query.base_url, f'p1_query_cache_stores_total{{result="{result}"}}')


def test_one_token_flooding_distinct_answers_keeps_others_and_the_latest_reading(stack: Stack) -> None:
    meter = Meter(DEVICE)
    assert post(stack, batch(DEVICE, meter.readings(3)), WRITE_TOKENS[DEVICE]).status_code == 200
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    with redis.Redis.from_url(stack.redis_url) as r:
        _minutes(stack, day, READ_CACHE)  # another reader's answer, cached first
        others = set(r.scan_iter(match=f"p1:q:{DEVICE}:*"))
        assert len(others) == 1
        stored, refused = _stores(stack, "stored"), _stores(stack, "over_budget")
        sizes = [_minutes(stack, day + timedelta(hours=2 * k + 2), READ_ALL) for k in range(FLOOD)]
        assert sum(sizes) > 3 * CACHE_BUDGET_BYTES  # unbounded, all of it would be kept for a day

        kept = _stores(stack, "stored") - stored
        # The budget is per window of the entries' lifetime: the flood spans at most two such windows.
        assert 0 < kept * min(sizes) <= 2 * CACHE_BUDGET_BYTES
        assert _stores(stack, "over_budget") - refused == FLOOD - kept
        flooded = set(r.scan_iter(match=f"p1:q:{DEVICE}:*")) - others
        assert len(flooded) == kept
        assert others <= set(r.scan_iter(match=f"p1:q:{DEVICE}:*"))
        # The latest reading has no TTL (never evicted under volatile-lru); every cache key has one.
        assert r.ttl(f"p1:latest:{DEVICE}") == -1
        assert all(r.ttl(key) > 0 for key in others | flooded)
    still_works(stack, meter)
    realtime = get(stack, f"/v1/devices/{DEVICE}/realtime")
    assert realtime.status_code == 200
    assert realtime.json()["ts"].startswith(meter.ts.strftime("%Y-%m-%dT%H:%M:%S"))
