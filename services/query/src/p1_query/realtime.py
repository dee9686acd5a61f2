"""The newest reading of a device: Redis (the schema's layout, ``p1_schema.redis``, written by ingest
after commit), else the newest row of ``samples``.

A found reading is kept in process memory for ``memo_s`` (default 0.25 s) so that many clients polling
the same device cost one Redis read per interval, not one each: with readings every second a reading can
be at most that much later than Redis. ``age_s`` is always computed at answer time. The reading is kept
already serialised (``forms.reading``: the same bytes from Redis or from PostgreSQL), so an answer is the
stored bytes plus ``age_s``.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pydantic_core import to_json

from p1_query.db import Acquire, DbTimer
from p1_query.forms import reading
from p1_query.samples import latest_sample
from p1_schema.redis import decode_latest, latest_key
from p1_servicekit.redis_guard import RedisGuard

MAX_MEMO_ENTRIES: Final = 10_000


@dataclass(frozen=True, slots=True)
class Latest:
    ts: float  # the reading's time, UTC seconds
    head: bytes  # the JSON object without its closing brace

    def answer(self, now: float) -> bytes:
        # round(…, 3) is a float of at most 3 decimals: repr writes it as pydantic would (forms).
        return self.head + b',"age_s":' + repr(round(now - self.ts, 3)).encode() + b"}"


def _latest(device_id: str, values: Mapping[str, object], ts: datetime) -> Latest:
    body = {**reading(values), "device_id": device_id}
    return Latest(ts.timestamp(), to_json(body)[:-1])


def parse_latest(device_id: str, raw: object) -> Latest | None:
    """The reading ingest wrote, or None for anything else — then the answer comes from PostgreSQL. A key
    that is not what ingest writes must never become a 500 or a malformed answer."""
    found = decode_latest(raw)  # the contract's own check: ~4 µs, and only once per memo_s
    return None if found is None else _latest(device_id, found.fields, found.ts)


class LatestReadings:
    def __init__(self, redis: RedisGuard, acquire: Acquire, db: DbTimer, memo_s: float) -> None:
        self._redis = redis
        self._acquire = acquire
        self._db = db
        self._memo_s = memo_s
        self._memo: dict[str, tuple[float, Latest]] = {}

    async def get(self, device_id: str) -> Latest | None:
        now = time.monotonic()
        hit = self._memo.get(device_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        latest = await self._from_redis(device_id)
        if latest is None:
            latest = await self._from_postgres(device_id)
        if latest is not None and self._memo_s > 0:
            if len(self._memo) >= MAX_MEMO_ENTRIES:
                self._memo.clear()  # bounded; refilled by the next reads
            self._memo[device_id] = (now + self._memo_s, latest)
        return latest

    async def _from_redis(self, device_id: str) -> Latest | None:
        raw = await self._redis.run(lambda r: r.get(latest_key(device_id)))
        return None if raw is None else parse_latest(device_id, raw)

    async def _from_postgres(self, device_id: str) -> Latest | None:
        async with self._acquire() as conn, self._db.time("realtime"):
            record = await latest_sample(conn, device_id)
        return None if record is None else _latest(device_id, dict(record.items()), record["ts"])
