"""Answers cached in Redis, keyed by the device's write generation.

Ingest INCRs ``p1:gen:{device_id}`` after every commit that stored a new reading, and the generation is
part of every key: late data makes the old answers unreachable at once, so answers about the past can
live long. Answers that touch the present get a short TTL because new readings keep arriving. Redis is
optional: when it is down or slow (RedisGuard bounds every call) the answer comes from PostgreSQL and
the lookup counts as ``error``.
"""

import hashlib
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from p1_servicekit.redis_guard import RedisGuard

PAST_TTL_S: Final = 24 * 3600
PRESENT_TTL_S: Final = 10
# What a client may reuse without asking again; revalidation with If-None-Match is cheap.
PAST_MAX_AGE_S: Final = 300
PRESENT_MAX_AGE_S: Final = 5


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


# One round trip instead of two: read the device's generation, then the answer under it. (The answer's
# key is derived inside the script, which a Redis Cluster would refuse; this is a single-node cache.)
_LOOKUP_LUA: Final = """
local gen = redis.call('GET', KEYS[1]) or '0'
local key = ARGV[1] .. gen .. ARGV[2]
return {key, redis.call('GET', key) or ''}
"""


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
        self._script: AsyncScript | None = None

    async def lookup(self, device_id: str, kind: str, params: str) -> Lookup:
        async def op(r: Redis) -> tuple[str, bytes | None]:
            if self._script is None:
                self._script = r.register_script(_LOOKUP_LUA)
            found = await self._script(
                keys=[f"p1:gen:{device_id}"], args=[f"p1:q:{device_id}:", f":{kind}:{params}"], client=r
            )
            key, value = (_bytes(v) for v in found)
            return key.decode(), value or None

        found = await self._redis.run(op)
        if found is None:
            (self._error if self._redis.enabled else self._miss).inc()
            return Lookup(None, None)
        key, value = found
        if value is None:
            self._miss.inc()
            return Lookup(key, None)
        etag, _, body = value.partition(b"\n")
        self._hit.inc()
        return Lookup(key, Cached(etag.decode(), body))

    async def store(self, key: str, entry: Cached, touches_now: bool) -> None:
        ttl = PRESENT_TTL_S if touches_now else PAST_TTL_S
        value = entry.etag.encode() + b"\n" + entry.body
        await self._redis.run(lambda r: r.set(key, value, ex=ttl))
