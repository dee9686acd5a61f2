"""Answers cached in Redis, keyed by the device's version (``cachekeys.DeviceVersion``, from PostgreSQL).

An answer about a range that ends at or before the device's newest reading is *final*: only late data
can change it, and ingest counts commits that stored late data in ``devices.late_writes`` (in the same
statement, so exactly), which is its key's version. Such answers live long, whatever newer readings keep
arriving. Any other answer is keyed by ``late_writes`` and the newest reading's time (every upload makes
a new key) and lives briefly. Redis is optional: when it is down or slow (RedisGuard bounds every call)
the answer comes from PostgreSQL and the lookup counts as ``error``.

Each process also keeps recent answers by key (32 MB at most): a hit then costs no Redis round trip
instead of transferring the answer again — a month of quarter-hours is ~800 kB of JSON.

Redis is shared by every reader and holds ingest's latest readings, so no reader may fill it:
- an answer larger than ``MAX_ENTRY_BYTES`` never goes to Redis (it is served, and kept in the process);
- each read token has a byte budget per window of an entry's lifetime (24 h for answers about the past,
  10 s for the others), counted in Redis itself (``p1:qbudget:*``, INCRBY, with a TTL) so that every
  process and worker shares it; beyond it answers are served but not cached in Redis. Entries stored in
  one window live at most into the next, so a token holds at most 2 × budget per lifetime class.
- every key written here has a TTL, so that Redis under ``maxmemory-policy volatile-lru`` evicts cache
  entries and never the latest readings (``p1:latest:*``, written by ingest without TTL).

What Redis returns is checked before it is served: an entry whose ETag is not its body's (truncated,
overwritten, not written by us) is a miss, recomputed from PostgreSQL and written again.
"""

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis

from p1_query.cachekeys import answer_key, budget_key
from p1_servicekit.redis_guard import RedisGuard

PAST_TTL_S: Final = 24 * 3600
PRESENT_TTL_S: Final = 10
# What a client may reuse without asking again; revalidation with If-None-Match is cheap.
PAST_MAX_AGE_S: Final = 300
PRESENT_MAX_AGE_S: Final = 5
# Answers kept in each process besides Redis (see _LocalAnswers).
LOCAL_MAX_BYTES: Final = 32 * 1024 * 1024
# The largest answer stored in Redis: a month of quarter-hours (~800 kB) fits; a week by the minute
# (~2 MB) does not, it would take a quarter of a token's budget at once.
MAX_ENTRY_BYTES: Final = 1024 * 1024

# Charges the token's budget of this window and stores the entry only while the budget holds; one
# round trip, atomic across processes. KEYS: entry, budget; ARGV: value, ttl, charge, budget, budget ttl.
_STORE_SCRIPT: Final = """
local used = redis.call('INCRBY', KEYS[2], ARGV[3])
if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
if used > tonumber(ARGV[4]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


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


def cache_control(final: bool) -> str:
    return f"private, max-age={PAST_MAX_AGE_S if final else PRESENT_MAX_AGE_S}"


@dataclass(frozen=True, slots=True)
class Cached:
    etag: str
    body: bytes


def decode_entry(value: object) -> Cached | None:
    """An entry as ``ResponseCache.store`` writes it (ETag, newline, body), or None for anything else."""
    if not isinstance(value, bytes):
        return None
    raw_tag, newline, body = value.partition(b"\n")
    try:
        tag = raw_tag.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not newline or tag != etag_of(body):
        return None
    return Cached(tag, body)


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
    def __init__(self, redis: RedisGuard, registry: CollectorRegistry, budget_bytes: int) -> None:
        self._redis = redis
        self._budget = budget_bytes
        total = Counter(
            "p1_query_cache",
            "Cache lookups by result (error: Redis unavailable, answered from PostgreSQL; corrupt: an "
            "entry that is not what we wrote, answered from PostgreSQL).",
            ["result"],
            registry=registry,
        )
        self._hit, self._miss, self._error = total.labels("hit"), total.labels("miss"), total.labels("error")
        self._corrupt = total.labels("corrupt")
        stores = Counter(
            "p1_query_cache_stores",
            "Answers offered to Redis by result (over_budget: the token's cache budget is spent; "
            "too_large: above the largest entry).",
            ["result"],
            registry=registry,
        )
        self._stored, self._over_budget = stores.labels("stored"), stores.labels("over_budget")
        self._too_large = stores.labels("too_large")
        self._local = _LocalAnswers(LOCAL_MAX_BYTES)

    async def lookup(self, device_id: str, version: str, kind: str, params: str, final: bool) -> Lookup:
        if not self._redis.enabled:  # no cache configured; the local answers only front Redis
            self._miss.inc()
            return Lookup(None, None)
        key = answer_key(device_id, version, kind, params)
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
        entry = decode_entry(value)
        if entry is None:
            self._corrupt.inc()
            return Lookup(key, None)  # recomputed, and the store overwrites what was there
        self._local.put(key, entry, now + _ttl(final))
        self._hit.inc()
        return Lookup(key, entry)

    async def store(self, key: str, entry: Cached, final: bool, owner: str) -> None:
        """Keeps the answer in this process, and in Redis within ``owner``'s budget (a Reader.key)."""
        ttl = _ttl(final)
        self._local.put(key, entry, time.monotonic() + ttl)
        value = entry.etag.encode() + b"\n" + entry.body
        if len(value) > MAX_ENTRY_BYTES:
            self._too_large.inc()
            return
        budget = budget_key(owner, ttl, time.time())
        args = (value, ttl, len(value), self._budget, 2 * ttl)
        stored = await self._redis.run(lambda r: _store(r, key, budget, args))
        if stored is not None:
            (self._stored if stored else self._over_budget).inc()


async def _store(r: Redis, key: str, budget: str, args: tuple[bytes, int, int, int, int]) -> bool:
    return bool(await r.eval(_STORE_SCRIPT, 2, key, budget, *args))


async def _get(r: Redis, key: str) -> tuple[bytes | str | None]:
    # In a tuple, so that "not cached" (None inside) differs from "Redis failed" (None).
    return (await r.get(key),)


def _ttl(final: bool) -> int:
    return PAST_TTL_S if final else PRESENT_TTL_S
