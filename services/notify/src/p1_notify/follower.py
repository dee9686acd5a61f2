"""Following the configured devices' newest readings: Redis pub/sub where ingest publishes each reading
that became a device's latest (``p1_schema.redis``), else — Redis unset or down — PostgreSQL polled every
``NOTIFY_PG_POLL_S`` for each device's newest good reading after the last one seen.

Either way the notifier gets a device's readings in time order (older or repeated ones are dropped
there), so switching sources loses nothing it needs: the newest reading is what the quarter is judged
on. After (re)subscribing, PostgreSQL is read once, so what was published meanwhile is caught up."""

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Final

import asyncpg
from prometheus_client import CollectorRegistry, Gauge
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from p1_config.redact import describe_error
from p1_contracts import timerange
from p1_contracts.models import Sample
from p1_notify.notifier import Notifier
from p1_schema.redis import LIVE_PREFIX, LatestReading, decode_latest, live_channel

log = logging.getLogger(__name__)

_COLUMNS: Final = tuple(Sample.model_fields)
# Each device's newest good reading after the one last seen: one statement for every device.
_NEWEST_SQL: Final = f"""
SELECT k.device_id, {", ".join(f"s.{c}" for c in _COLUMNS)}
  FROM unnest($1::text[], $2::timestamptz[]) AS k(device_id, after)
 CROSS JOIN LATERAL (
       SELECT {", ".join(_COLUMNS)} FROM samples
        WHERE samples.device_id = k.device_id AND samples.ts > k.after AND samples.flag IS NULL
        ORDER BY samples.ts DESC LIMIT 1) AS s"""
_NEVER: Final = timerange.EARLIEST - timedelta(microseconds=1)


class Follower:
    def __init__(
        self,
        *,
        notifier: Notifier,
        devices: Callable[[], Collection[str]],
        pool: "asyncpg.Pool[asyncpg.Record]",
        redis_url: str | None,
        pg_poll_s: float,
        redis_retry_s: float,
        timeout_s: float,
        registry: CollectorRegistry,
    ) -> None:
        self._notifier = notifier
        self._devices = devices
        self._pool = pool
        self._redis_url = redis_url
        self._pg_poll_s = pg_poll_s
        self._retry_s = redis_retry_s
        self._timeout_s = timeout_s
        self._seen: dict[str, datetime] = {}
        self._source = Gauge(
            "p1_notify_following_redis",
            "1 while readings come from Redis pub/sub, 0 while PostgreSQL is polled.",
            registry=registry,
        )

    async def run(self) -> None:
        """Follows until cancelled."""
        if not self._redis_url:
            log.info("following PostgreSQL (no REDIS_URL)", extra={"poll_s": self._pg_poll_s})
            await self._poll(None)
            return
        while True:
            try:
                await self._follow_redis(self._redis_url)
            except (RedisError, OSError, TimeoutError) as exc:
                self._source.set(0)
                log.warning(
                    "redis unavailable; polling PostgreSQL",
                    extra={"error": describe_error(exc), "poll_s": self._pg_poll_s},
                )
            await self._poll(self._retry_s)

    async def _follow_redis(self, url: str) -> None:
        client = Redis.from_url(
            url, socket_connect_timeout=self._timeout_s, socket_timeout=None, health_check_interval=5
        )
        pubsub = client.pubsub()
        try:
            subscribed = await self._resubscribe(pubsub, set())
            self._source.set(1)
            log.info("following redis", extra={"devices": len(subscribed)})
            await self._poll_once()  # what was published before the subscription took
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None and message.get("type") == "message":
                    await self._published(message["channel"], message["data"])
                subscribed = await self._resubscribe(pubsub, subscribed)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()

    async def _resubscribe(self, pubsub: PubSub, subscribed: set[str]) -> set[str]:
        """Subscribes to the channels of devices added to the config, and leaves those removed."""
        wanted = set(self._devices())
        if added := wanted - subscribed:
            await pubsub.subscribe(*(live_channel(d) for d in added))
            if subscribed:  # devices added to the config: what they published before is caught up
                await self._poll_once(added)
        if subscribed - wanted:
            await pubsub.unsubscribe(*(live_channel(d) for d in subscribed - wanted))
        if not wanted and not pubsub.subscribed:
            await pubsub.ping()  # an idle connection still notices that Redis went away
        return wanted

    async def _published(self, channel: object, data: object) -> None:
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        reading = decode_latest(data)
        if reading is None or not name.startswith(LIVE_PREFIX):
            return
        await self._handle(name.removeprefix(LIVE_PREFIX), reading, "redis")

    async def _poll(self, for_s: float | None) -> None:
        """Polls PostgreSQL every ``pg_poll_s``, for ``for_s`` seconds or forever."""
        loop = asyncio.get_running_loop()
        end = None if for_s is None else loop.time() + for_s
        while end is None or loop.time() < end:
            started = loop.time()
            await self._poll_once()
            await asyncio.sleep(max(0.0, self._pg_poll_s - (loop.time() - started)))

    async def _poll_once(self, only: Collection[str] | None = None) -> None:
        devices = sorted(self._devices() if only is None else only)
        if not devices:
            return
        after = [self._seen.get(d, _NEVER) for d in devices]
        try:
            async with self._pool.acquire(timeout=self._timeout_s * 4) as conn:
                rows = await conn.fetch(_NEWEST_SQL, devices, after)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("cannot read the newest readings", extra={"error": describe_error(exc)})
            return
        for row in rows:
            fields = {c: row[c] for c in _COLUMNS if row[c] is not None}
            await self._handle(row["device_id"], LatestReading(row["ts"], fields), "postgres")

    async def _handle(self, device_id: str, reading: LatestReading, source: str) -> None:
        seen = self._seen.get(device_id)
        if seen is not None and reading.ts <= seen:
            return
        self._seen[device_id] = reading.ts
        await self._notifier.on_reading(device_id, reading, source)
