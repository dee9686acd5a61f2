"""The HTTP side of an export: how many may run at once, and how long a client may stall one.

``ExportSlots`` bounds the exports in progress per read token and per process (429 with Retry-After
beyond). ``ExportResponse`` streams the body with every ``send`` bounded by the send timeout: a client
that takes no data for that long gets its connection closed mid-body (so it cannot mistake the file for
complete), and the slot and the body's resources are released at once, whatever ends the export.
"""

import contextvars
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Final

import anyio
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from p1_query.slots import Slots
from p1_servicekit.errors import TooManyRequests
from p1_servicekit.problems import DB_UNAVAILABLE

log = logging.getLogger(__name__)

# The results an export ends with (the label of p1_query_exports_total).
DONE: Final = "done"
DISCONNECTED: Final = "disconnected"
SLOW_CLIENT: Final = "slow_client"
DB_FAILED: Final = "db_unavailable"
REFUSED: Final = "refused"
ERROR: Final = "error"
# uvicorn's words when an app ends a response early; expected (and logged by us) for an aborted export.
_UVICORN_INCOMPLETE: Final = "ASGI callable returned without completing response."
_aborted: contextvars.ContextVar[bool] = contextvars.ContextVar("p1_export_aborted", default=False)


class ExportSlots:
    """Exports in progress in this process, per token (``Reader.key``) and in all."""

    def __init__(self, per_token: int, per_process: int, retry_after_s: int, registry: CollectorRegistry):
        active = Gauge(
            "p1_query_exports_active",
            "Exports in progress.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._slots = Slots("exports are in progress", per_token, per_process, retry_after_s, active)
        self.results = Counter(
            "p1_query_exports", "Exports by how they ended.", ["result"], registry=registry
        )

    def take(self, owner: str) -> Callable[[str], None]:
        """A slot for ``owner``, or TooManyRequests; the returned function ends the export (once)."""
        try:
            free = self._slots.take(owner)
        except TooManyRequests:
            self.results.labels(REFUSED).inc()
            raise

        def end(result: str) -> None:
            if free():
                self.results.labels(result).inc()

        return end

    def in_progress(self) -> int:
        return self._slots.taken()


class ExportResponse(StreamingResponse):
    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        *,
        media_type: str,
        headers: Mapping[str, str],
        send_timeout_s: float,
        end: Callable[[str], None],
    ) -> None:
        super().__init__(body, media_type=media_type, headers=headers)
        self._body = body
        self._send_timeout_s = send_timeout_s
        self._end = end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        result = ERROR  # unless the stream ends otherwise
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    nonlocal result
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    result = DISCONNECTED
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                result = await self._stream(send)
                group.cancel_scope.cancel()
        finally:
            await self._body.aclose()
            self._end(result)
        if result == SLOW_CLIENT:
            log.warning(
                "export aborted: the client took no data", extra={"send_timeout_s": self._send_timeout_s}
            )
        if result in (SLOW_CLIENT, DB_FAILED):
            _aborted.set(True)  # seen by AbortedExportFilter in this request's context

    async def _stream(self, send: Send) -> str:
        start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        if not await self._send(send, start):
            return SLOW_CLIENT
        while True:
            try:
                chunk = await anext(self._body)
            except StopAsyncIteration:
                break
            except DB_UNAVAILABLE as exc:  # after the first byte the status cannot change: cut it short
                log.warning("export aborted: database unavailable", extra={"error": repr(exc)})
                return DB_FAILED
            if not await self._send(send, {"type": "http.response.body", "body": chunk, "more_body": True}):
                return SLOW_CLIENT
        if not await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False}):
            return SLOW_CLIENT
        return DONE

    async def _send(self, send: Send, message: Message) -> bool:
        """False when the client did not make room for ``message`` within the send timeout."""
        with anyio.move_on_after(self._send_timeout_s) as waited:
            await send(message)
        return not waited.cancelled_caught


class AbortedExportFilter(logging.Filter):
    """Drops uvicorn's error about an incomplete response when it is an export we aborted on purpose
    (logged above as a warning); the same message for any other response still gets through."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_aborted.get() and record.getMessage() == _UVICORN_INCOMPLETE)


def install_log_filter() -> None:
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, AbortedExportFilter) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(AbortedExportFilter())
