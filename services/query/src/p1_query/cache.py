"""Answers cached in Redis, keyed by the device's version (``store.DeviceVersion``, from PostgreSQL).

An answer about a range that ends at or before the device's newest reading is *final*: only late data
can change it, and ingest counts commits that stored late data in ``devices.late_writes`` (in the same
statement, so exactly), which is its key's version. Such answers live long, whatever newer readings keep
arriving. Any other answer is keyed by ``late_writes`` and the newest reading's time (every upload makes
a new key) and lives briefly. Redis is optional: when it is down or slow (RedisGuard bounds every call)
the answer comes from PostgreSQL and the lookup counts as ``error``.

Each process also keeps recent answers by key (32 MB at most): a hit then costs no Redis round trip
instead of transferring the answer again — a month of quarter-hours is ~800 kB of JSON.
"""

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis

from p1_servicekit.redis_guard import RedisGuard

PAST_TTL_S: Final = 24 * 3600
PRESENT_TTL_S: Final = 10
# What a client may reuse without asking again; revalidation with If-None-Match is cheap.
PAST_MAX_AGE_S: Final = 300
PRESENT_MAX_AGE_S: Final = 5
# Answers kept in each process besides Redis (see _LocalAnswers).
LOCAL_MAX_BYTES: Final = 32 * 1024 * 1024


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match requires: a list, W/ prefixes and * are allowed."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"unexpected Redis reply {type(value).__name__}")


def cache_control(final: bool) -> str:
    return f"private, max-age={PAST_MAX_AGE_S if final else PRESENT_MAX_AGE_S}"


@dataclass(frozen=True, slots=True)
class Cached:
    etag: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Lookup:
    key: str | None  # None: Redis unusable now, do not try to store
    hit: Cached | None


class _LocalAnswers:
    """Recent answers in this process, by cache key, bounded in bytes, least recently used out first.

    An answer under a key never changes (the key holds the device's version and every parameter), so
    a hit here needs no Redis round trip at all."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: OrderedDict[str, tuple[float, Cached]] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes

    def get(self, key: str, now: float) -> Cached | None:
        item = self._entries.get(key)
        if item is None:
            return None
        if item[0] <= now:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return item[1]

    def put(self, key: str, entry: Cached, expires: float) -> None:
        size = len(entry.body)
        if size > self._max // 8:  # one huge answer must not flush all the others
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (expires, entry)
        self._bytes += size
        while self._bytes > self._max:
            _, (_, old) = self._entries.popitem(last=False)
            self._bytes -= len(old.body)

    def _drop(self, key: str) -> None:
        _, entry = self._entries.pop(key)
        self._bytes -= len(entry.body)


class ResponseCache:
    def __init__(self, redis: RedisGuard, registry: CollectorRegistry) -> None:
        self._redis = redis
        total = Counter(
            "p1_query_cache",
            "Cache lookups by result (error: Redis unavailable, answered from PostgreSQL).",
            ["result"],
            registry=registry,
        )
        self._hit, self._miss, self._error = total.labels("hit"), total.labels("miss"), total.labels("error")
        self._local = _LocalAnswers(LOCAL_MAX_BYTES)

    async def lookup(self, device_id: str, version: str, kind: str, params: str, final: bool) -> Lookup:
        if not self._redis.enabled:  # no cache configured; the local answers only front Redis
            self._miss.inc()
            return Lookup(None, None)
        key = f"p1:q:{device_id}:{version}:{kind}:{params}"
        now = time.monotonic()
        local = self._local.get(key, now)
        if local is not None:
            self._hit.inc()
            return Lookup(key, local)
        found = await self._redis.run(lambda r: _get(r, key))
        if found is None:
            self._error.inc()
            return Lookup(None, None)  # Redis unusable now: do not try to store either
        value = found[0]
        if value is None:
            self._miss.inc()
            return Lookup(key, None)
        etag, _, body = _bytes(value).partition(b"\n")
        entry = Cached(etag.decode(), body)
        self._local.put(key, entry, now + _ttl(final))
        self._hit.inc()
        return Lookup(key, entry)

    async def store(self, key: str, entry: Cached, final: bool) -> None:
        ttl = _ttl(final)
        self._local.put(key, entry, time.monotonic() + ttl)
        value = entry.etag.encode() + b"\n" + entry.body
        await self._redis.run(lambda r: r.set(key, value, ex=ttl))


async def _get(r: Redis, key: str) -> tuple[bytes | str | None]:
    # In a tuple, so that "not cached" (None inside) differs from "Redis failed" (None).
    return (await r.get(key),)


def _ttl(final: bool) -> int:
    return PAST_TTL_S if final else PRESENT_TTL_S
