"""The Redis layout ingest writes and query reads: each device's newest reading.

- ``p1:latest:{device_id}``: the newest good reading, without TTL (a Redis under ``volatile-lru`` evicts
  only the query cache's keys, which all have one), as a JSON object: ``device_id`` and the Sample's
  fields that have a value, times written as ``p1_contracts.timeform.instant`` (UTC, ``Z``).
- ``p1:live:{device_id}``: the channel on which each reading that became the latest is published, in
  the same JSON.

Ingest writes after its commit with ``store_latest``: one round trip, atomic, that replaces the latest
only with a newer reading (a late batch must not move it back) and publishes only what became the latest.
Query reads with ``decode_latest``, which turns anything that is not such a reading into a miss, and
hands over the values as the contract reads them (the form of the answer is query's).
(The query cache's own keys, ``p1:q:…``, are query's.)
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from pydantic import ValidationError
from redis.asyncio import Redis

from p1_contracts import timerange
from p1_contracts.models import Sample
from p1_contracts.timeform import instant

LATEST_PREFIX: Final = "p1:latest:"
LIVE_PREFIX: Final = "p1:live:"

# KEYS[1] the latest key; ARGV[1] the payload, ARGV[2] its ts in ``_order_key`` form, ARGV[3] the channel.
# A stored ts is RFC 3339 in UTC, ``…:ssZ`` (20 characters) or ``…:ss.ffffffZ`` (27; also every payload
# written before times became ``instant``): given its zero fraction, the 20-character form orders as text
# in time order with the other.
_SET_IF_NEWER: Final = """
local function order(ts)
  if string.len(ts) == 20 then return string.sub(ts, 1, 19) .. '.000000Z' end
  return ts
end
local cur = redis.call('GET', KEYS[1])
local newer = true
if cur then
  local ok, obj = pcall(cjson.decode, cur)
  if ok and type(obj) == 'table' and type(obj['ts']) == 'string' and order(obj['ts']) >= ARGV[2] then
    newer = false
  end
end
if newer then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('PUBLISH', ARGV[3], ARGV[1])
  return 1
end
return 0
"""


def latest_key(device_id: str) -> str:
    return LATEST_PREFIX + device_id


def live_channel(device_id: str) -> str:
    return LIVE_PREFIX + device_id


def _order_key(ts: datetime) -> str:
    """The script's comparison form: UTC with every digit of the fraction, so text order is time order."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_latest(device_id: str, sample: Sample) -> bytes:
    doc: dict[str, object] = {"device_id": device_id}
    for name in Sample.model_fields:
        value = getattr(sample, name)
        if value is not None:
            doc[name] = instant(value) if isinstance(value, datetime) else value
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


async def store_latest(client: Redis, device_id: str, sample: Sample) -> bool:
    """Makes ``sample`` the device's latest reading unless a newer one is stored; True when it did."""
    payload = encode_latest(device_id, sample)
    args = (payload, _order_key(sample.ts), live_channel(device_id))
    return bool(await client.eval(_SET_IF_NEWER, 1, latest_key(device_id), *args))


@dataclass(frozen=True, slots=True)
class LatestReading:
    ts: datetime
    # The Sample's fields that have a value, as the contract reads them (a time as an aware datetime, a
    # number as a float), so that a reader writes them in its own form whatever form they were stored in.
    fields: dict[str, object]


def decode_latest(raw: object) -> LatestReading | None:
    """The reading ``store_latest`` wrote, or None for anything else (not bytes, not a Sample, a time
    outside the supported range): a value that is not what ingest writes never becomes an answer."""
    if not isinstance(raw, bytes):
        return None
    try:
        # The contract's own check (types, ranges, finite numbers).
        sample = Sample.model_validate_json(raw)
    except ValidationError:
        return None
    fields = {name: value for name, value in sample if value is not None}
    # Ingest never stores a time outside the supported range, and some could not even be written in UTC
    # (year 1 at +01:00).
    if not all(timerange.in_range(value) for value in fields.values() if isinstance(value, datetime)):
        return None
    return LatestReading(sample.ts, fields)
