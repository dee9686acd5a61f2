"""The newest reading per device in Redis (``p1:latest:{id}``), published on ``p1:live:{id}``. Written
after the commit, through RedisGuard: bounded by a short timeout, never an error for the request.

(The query service's cache is versioned by ``devices.late_writes`` and ``last_ts`` in PostgreSQL,
written in the insert's own statement, so no Redis write is needed to keep cached answers right.)
"""

from datetime import UTC, datetime
from typing import Final

import msgspec
from redis.asyncio import Redis

from p1_contracts.models import Sample
from p1_servicekit.redis_guard import RedisGuard

# One round trip, atomic: replace the latest only with a newer reading (a late batch must not move it
# back), and publish only what became the latest.
# ts is compared as text: ingest always writes it in UTC with a fixed width, so text order is time order.
_SCRIPT: Final = """
local cur = redis.call('GET', KEYS[1])
local newer = true
if cur then
  local ok, obj = pcall(cjson.decode, cur)
  if ok and type(obj) == 'table' and type(obj['ts']) == 'string' and obj['ts'] >= ARGV[2] then
    newer = false
  end
end
if newer then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('PUBLISH', ARGV[3], ARGV[1])
end
if newer then return 1 else return 0 end
"""


def utc_text(ts: datetime) -> str:
    """RFC 3339 in UTC with a fixed width (microseconds always), so that text order is time order."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def latest_json(device_id: str, sample: Sample) -> tuple[bytes, str]:
    doc: dict[str, object] = {"device_id": device_id}
    for name in Sample.model_fields:
        value = getattr(sample, name)
        doc[name] = value.isoformat() if isinstance(value, datetime) else value
    ts = utc_text(sample.ts)
    doc["ts"] = ts
    return msgspec.json.encode(doc), ts


class LatestWriter:
    def __init__(self, guard: RedisGuard) -> None:
        self.guard = guard

    async def publish(self, device_id: str, newest: Sample) -> bool | None:
        """True when ``newest`` became the latest; None when Redis is off or failed (counted, logged)."""
        payload, ts = latest_json(device_id, newest)

        async def op(client: Redis) -> bool:
            result = await client.eval(
                _SCRIPT,
                1,
                f"p1:latest:{device_id}",
                payload,
                ts,
                f"p1:live:{device_id}",
            )
            return bool(result)

        return await self.guard.run(op)
