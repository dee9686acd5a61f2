"""New readings as they arrive, for live streams: ONE Redis subscription per process, fanned out in memory.

``LiveHub`` subscribes once to the pattern of every device's live channel (``p1_schema.redis``:
``p1:live:*``, published by ingest after each commit that made a reading the latest) on its own
connection, parses each message once, and hands the reading to every open stream of that device
(``Subscriber``). So 2,000 open streams cost one Redis connection and one parse per reading, not 2,000.
The pattern brings every device's readings to every query process, wanted or not: at a household's
reading per second that is a few hundred bytes per device per second, dropped at a dictionary lookup
when nobody watches the device.

While Redis is unset, unreachable or reconnecting, ``live`` is false and the streams poll PostgreSQL
themselves (``p1_query.live_stream``); the hub reconnects with a bounded backoff.

``LiveSlots`` bounds the open streams per read token and per process (429 beyond).
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError

from p1_config.redact import describe_error
from p1_query.realtime import Latest, parse_latest
from p1_query.slots import Slots
from p1_schema.redis import LIVE_PREFIX

log = logging.getLogger(__name__)

# Readings a stream may have waiting before the oldest are dropped (a client that reads too slowly sees
# the newest ones; a live view needs no more).
QUEUE: Final = 32
_PATTERN: Final = LIVE_PREFIX + "*"
_BACKOFF_S: Final = (0.5, 1.0, 2.0, 5.0)
# How often LiveHub.tick looks for streams due to wake: the granularity of heartbeats, polls and the
# quarter's once-a-second.
TICK_S: Final = 0.2


class Subscriber:
    """One open stream's inbox: the readings not yet sent, and a wake-up (also for revocation, stop).

    The stream waits on it without a timeout: ``LiveHub.tick`` wakes it at ``due`` (its heartbeat, its
    next poll or quarter) and checks ``allowed`` for it. A wait with a timeout would make a timer and a
    few objects per stream per wake-up that live for seconds, long enough to reach the collector's oldest
    generation: with thousands of streams, full collections every few seconds (measured: pauses of up to
    1.3 s with 2,000 streams, bench/live.py).
    """

    def __init__(self, allowed: Callable[[], bool]) -> None:
        self._queue: deque[Latest] = deque(maxlen=QUEUE)
        self._wake = asyncio.Event()
        self.allowed = allowed
        self.due = float("inf")  # loop time at which the stream wants to be woken
        self.revoked = False

    def push(self, latest: Latest) -> None:
        self._queue.append(latest)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def wait(self) -> None:
        await self._wake.wait()

    def take(self) -> list[Latest]:
        self._wake.clear()
        out = list(self._queue)
        self._queue.clear()
        return out


class LiveHub:
    def __init__(self, redis_url: str | None, connect_timeout_s: float) -> None:
        self._url = redis_url
        self._connect_timeout_s = connect_timeout_s
        self._by_device: dict[str, set[Subscriber]] = {}
        self.live = False  # subscribed now: streams wait for messages rather than poll
        self.received = 0

    def open(self, device_id: str, allowed: Callable[[], bool]) -> tuple[Subscriber, Callable[[], None]]:
        """A new inbox for a stream of ``device_id`` (``allowed``: is its token still good for it?), and
        the function that closes it."""
        sub = Subscriber(allowed)
        self._by_device.setdefault(device_id, set()).add(sub)

        def close() -> None:
            subs = self._by_device.get(device_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_device[device_id]

        return sub, close

    def streams(self) -> int:
        return sum(len(subs) for subs in self._by_device.values())

    def wake_all(self) -> None:
        for subs in self._by_device.values():
            for sub in subs:
                sub.wake()

    async def tick(self, every_s: float, revoke_check_s: float) -> None:
        """Until cancelled: wakes each stream whose ``due`` time has come, and every ``revoke_check_s``
        asks each stream's ``allowed`` (a revoked one is marked and woken, and ends itself)."""
        loop = asyncio.get_running_loop()
        next_check = loop.time() + revoke_check_s
        while True:
            await asyncio.sleep(every_s)
            now = loop.time()
            checking = now >= next_check
            if checking:
                next_check = now + revoke_check_s
            for subs in list(self._by_device.values()):
                for sub in list(subs):
                    if checking and not sub.revoked and not sub.allowed():
                        sub.revoked = True
                        sub.wake()
                    elif sub.due <= now:
                        sub.wake()

    def dispatch(self, channel: bytes | str, data: object) -> None:
        """One published reading to the streams of its device (parsed once, only when someone watches)."""
        self.received += 1
        name = channel.decode() if isinstance(channel, bytes) else channel
        subs = self._by_device.get(name[len(LIVE_PREFIX) :])
        if not subs:
            return
        latest = parse_latest(name[len(LIVE_PREFIX) :], data)
        if latest is None:
            return
        for sub in subs:
            sub.push(latest)

    async def run(self) -> None:
        """Listens until cancelled (the app's shutdown), reconnecting after a failure."""
        if self._url is None:
            return
        failures = 0
        while True:
            try:
                await self._listen()
                failures = 0  # the server closed a working subscription: reconnect soon
            except (RedisError, OSError, TimeoutError) as exc:
                if failures == 0:
                    log.warning(
                        "live subscription lost; streams poll PostgreSQL until it is back",
                        extra={"error": describe_error(exc)},
                    )
                failures += 1
            finally:
                self._set_live(False)
            await asyncio.sleep(_BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)])

    async def _listen(self) -> None:
        assert self._url is not None
        client = Redis.from_url(
            self._url, socket_connect_timeout=self._connect_timeout_s, socket_keepalive=True
        )
        pubsub = client.pubsub()
        try:
            await pubsub.psubscribe(_PATTERN)
            async for message in pubsub.listen():
                kind = message.get("type")
                if kind == "pmessage":
                    self.dispatch(message["channel"], message["data"])
                elif kind == "psubscribe":
                    self._set_live(True)
        finally:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py's stubs
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await client.aclose()

    def _set_live(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            if live:
                log.info("live subscription established")
            # Streams re-read their state: polling starts or stops at once.
            self.wake_all()


class LiveSlots:
    """Open live streams in this process, per read token (``Reader.key``) and in all."""

    def __init__(self, per_token: int, per_process: int, retry_after_s: int, registry: CollectorRegistry):
        gauge = Gauge(
            "p1_query_live_streams", "Open live streams.", registry=registry, multiprocess_mode="livesum"
        )
        self._slots = Slots("live streams are open", per_token, per_process, retry_after_s, gauge)

    def take(self, owner: str) -> Callable[[], None]:
        """A slot for ``owner``, or TooManyRequests; the returned function frees it (once)."""
        free = self._slots.take(owner)

        def release() -> None:
            free()

        return release

    def open(self) -> int:
        return self._slots.taken()
