"""Answers cached in Redis, keyed by the device's write generation.

Ingest INCRs ``p1:gen:{device_id}`` after every commit that stored a new reading, and the generation is
part of every key: late data makes the old answers unreachable at once, so answers about the past can
live long. Answers that touch the present get a short TTL because new readings keep arriving. Redis is
optional: when it is down or slow (RedisGuard bounds every call) the answer comes from PostgreSQL and
the lookup counts as ``error``.

Each process also keeps recent answers by key (32 MB at most): a hit then costs one small Redis read (the
generation) instead of transferring the answer again — a month of quarter-hours is ~800 kB of JSON.
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


def cache_control(touches_now: bool) -> str:
    return f"private, max-age={PRESENT_MAX_AGE_S if touches_now else PAST_MAX_AGE_S}"


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

    An answer under a key never changes (the key holds the device's write generation and every
    parameter), so a hit here needs only the generation from Redis, not the answer's bytes again."""

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

    async def lookup(self, device_id: str, kind: str, params: str, touches_now: bool) -> Lookup:
        found = await self._redis.run(lambda r: _generation(r, device_id))
        if found is None:
            # Without the generation no cached answer can be trusted: answer from PostgreSQL.
            (self._error if self._redis.enabled else self._miss).inc()
            return Lookup(None, None)
        key = f"p1:q:{device_id}:{_text(found[0]) or '0'}:{kind}:{params}"
        now = time.monotonic()
        local = self._local.get(key, now)
        if local is not None:
            self._hit.inc()
            return Lookup(key, local)
        value = await self._redis.run(lambda r: r.get(key))
        if value is None:
            self._miss.inc()
            return Lookup(key, None)
        etag, _, body = _bytes(value).partition(b"\n")
        entry = Cached(etag.decode(), body)
        self._local.put(key, entry, now + _ttl(touches_now))
        self._hit.inc()
        return Lookup(key, entry)

    async def store(self, key: str, entry: Cached, touches_now: bool) -> None:
        ttl = _ttl(touches_now)
        self._local.put(key, entry, time.monotonic() + ttl)
        value = entry.etag.encode() + b"\n" + entry.body
        await self._redis.run(lambda r: r.set(key, value, ex=ttl))


async def _generation(r: Redis, device_id: str) -> tuple[bytes | str | None]:
    # In a tuple, so that "no generation yet" (None inside) differs from "Redis failed" (None).
    return (await r.get(f"p1:gen:{device_id}"),)


def _ttl(touches_now: bool) -> int:
    return PRESENT_TTL_S if touches_now else PAST_TTL_S


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
