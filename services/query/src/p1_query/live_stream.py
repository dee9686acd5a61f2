"""``GET /v1/devices/{device_id}/live``: server-sent events of a device's new readings.

The stream starts with ``retry: 3000`` and the newest reading, then sends:

- ``event: reading`` with the Realtime JSON (as ``/realtime`` answers it) of every new reading: from the
  process's one Redis subscription (``p1_query.live.LiveHub``), or, while there is none, by polling
  PostgreSQL every ``LIVE_POLL_S``;
- ``event: quarter`` with the ``capacity/now`` JSON (in the zone ``tz``, default Europe/Brussels) after
  the first reading and after new readings, at most once a second (``p1_query.live_quarter``);
- a comment ``: hb`` after ``LIVE_HEARTBEAT_S`` without anything else (proxies and browsers keep an idle
  connection open);
- ``event: end`` with ``{"reason": "revoked"}`` and the end of the response once its token (or the
  session's token) left the token table or lost the device (checked every ``LIVE_REVOKE_CHECK_S``), or
  ``{"reason": "stopping"}`` when the server stops (a browser's EventSource reconnects after ``retry``).

The client's disconnect is watched (not only noticed at the next write), so its slot and inbox are freed
at once. Nothing here writes to the database; Redis is only listened to.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from p1_query.auth import Reader, require_device, unknown_device
from p1_query.handlers import check_device_id
from p1_query.live import Subscriber
from p1_query.live_quarter import check_tz
from p1_query.realtime import Latest
from p1_query.state import QueryState, caller
from p1_query.zones import DEFAULT_TZ
from p1_servicekit.problems import DB_UNAVAILABLE
from p1_servicekit.stopping import on_stopping, stopping

log = logging.getLogger(__name__)

EVENT_STREAM: Final = "text/event-stream"
RETRY: Final = b"retry: 3000\n\n"
HEARTBEAT: Final = b": hb\n\n"
REVOKED: Final = b'event: end\ndata: {"reason":"revoked"}\n\n'
STOPPING: Final = b'event: end\ndata: {"reason":"stopping"}\n\n'
QUARTER_EVERY_S: Final = 1.0


def event(name: str, data: bytes) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


class LiveResponse(Response):
    """An endless ``text/event-stream`` body; ``close`` runs however it ends (even before it starts)."""

    def __init__(self, events: AsyncIterator[bytes], close: Callable[[], None]) -> None:
        super().__init__(
            media_type=EVENT_STREAM,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        # Response counts its (empty) body; an endless one has no length.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._events = events
        self._close = close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            gone = False
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    nonlocal gone
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    gone = True
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                async for chunk in self._events:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                group.cancel_scope.cancel()
            if not gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client left between two writes
            pass
        finally:
            self._close()


class Stream:
    """The state of one open stream, between wake-ups."""

    def __init__(
        self, state: QueryState, reader: Reader, device_id: str, tz: str, sub: Subscriber, first: Latest
    ):
        self.state = state
        self.reader = reader
        self.device_id = device_id
        self.tz = tz
        self.sub = sub
        self.last_ts = first.ts
        self.first = first
        loop = asyncio.get_running_loop()
        self.clock = loop.time
        now = self.clock()
        settings = state.settings
        self.next_hb = now + settings.live_heartbeat_s
        self.next_check = now + settings.live_revoke_check_s
        self.next_poll = now + settings.live_poll_s
        self.next_quarter = now
        self.quarter_due = state.quarter is not None
        self.quarter_task: asyncio.Task[bytes | None] | None = None

    def revoked(self) -> bool:
        scope = self.reader.current_scope(self.state.tokens)
        return scope is None or not Reader(scope, None).may_see(self.device_id)

    def _readings(self, found: list[Latest]) -> list[bytes]:
        out = []
        now = time.time()
        for latest in found:
            if latest.ts > self.last_ts:
                self.last_ts = latest.ts
                out.append(event("reading", latest.answer(now)))
                self.quarter_due = self.state.quarter is not None
        return out

    async def _poll(self) -> list[bytes]:
        try:
            latest = await self.state.latest.get(self.device_id)
        except DB_UNAVAILABLE:
            return []  # the next poll tries again; the stream stays open
        return [] if latest is None else self._readings([latest])

    def _start_quarter(self) -> list[bytes]:
        """The running quarter: at once when another stream of the device has it already, else computed
        beside the stream (a slow database must not hold readings back) and picked up by
        ``_quarter_done`` when the task wakes the stream."""
        quarter = self.state.quarter
        self.quarter_due = False
        self.next_quarter = self.clock() + QUARTER_EVERY_S
        if quarter is None or self.quarter_task is not None:
            return []
        hit, body = quarter.ready(self.device_id, self.tz, self.last_ts)
        if hit:
            return [] if body is None else [event("quarter", body)]
        task = asyncio.create_task(quarter.get(self.device_id, self.tz, self.last_ts))
        task.add_done_callback(lambda _: self.sub.wake())
        self.quarter_task = task
        return []

    def _quarter_done(self) -> list[bytes]:
        task = self.quarter_task
        if task is None or not task.done():
            return []
        self.quarter_task = None
        if task.cancelled():
            return []
        failed = task.exception()
        if failed is not None:  # the next reading tries again; the stream goes on either way
            if not isinstance(failed, DB_UNAVAILABLE):
                log.error("live quarter failed", exc_info=failed, extra={"device_id": self.device_id})
            return []
        body = task.result()
        return [] if body is None else [event("quarter", body)]

    def close(self) -> None:
        if self.quarter_task is not None:
            self.quarter_task.cancel()

    def _deadline(self) -> float:
        deadline = min(self.next_hb, self.next_check)
        if not self.state.live.live:
            deadline = min(deadline, self.next_poll)
        if self.quarter_due:
            deadline = min(deadline, self.next_quarter)
        return deadline

    async def events(self) -> AsyncIterator[bytes]:
        settings = self.state.settings
        yield RETRY + event("reading", self.first.answer(time.time()))
        while True:
            if stopping():
                yield STOPPING
                return
            try:
                async with asyncio.timeout_at(self._deadline()):
                    await self.sub.wait()
            except TimeoutError:
                pass
            out = self._readings(self.sub.take())
            now = self.clock()
            if not self.state.live.live and now >= self.next_poll:
                out += await self._poll()
                self.next_poll = now + settings.live_poll_s
            if now >= self.next_check:
                if self.revoked():
                    yield REVOKED
                    return
                self.next_check = now + settings.live_revoke_check_s
            out += self._quarter_done()
            if self.quarter_due and now >= self.next_quarter:
                out += self._start_quarter()
            if out:
                yield b"".join(out)
                self.next_hb = now + settings.live_heartbeat_s
            elif now >= self.next_hb:
                yield HEARTBEAT
                self.next_hb = now + settings.live_heartbeat_s


async def live(request: Request) -> Response:
    state, reader = caller(request)
    device_id = check_device_id(request.path_params["device_id"])
    require_device(reader, device_id)
    tz = check_tz(request.query_params.get("tz"), DEFAULT_TZ)
    free = state.live_slots.take(reader.key())  # 429 beyond the limits
    closers = [free]
    try:
        first = await state.latest.get(device_id)
        if first is None:
            raise unknown_device(device_id)
        sub, unsubscribe = state.live.open(device_id)
        closers.append(unsubscribe)
        closers.append(on_stopping(sub.wake))
    except BaseException:
        for undo in closers:
            undo()
        raise

    def close() -> None:
        for closer in closers:
            closer()

    stream = Stream(state, reader, device_id, tz, sub, first)
    closers.append(stream.close)
    return LiveResponse(stream.events(), close)
