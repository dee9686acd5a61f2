"""uvicorn's httptools protocol with the two bounds it lacks: the size of a request head (request
line + headers) and the time a client may take to send it.

Without them one client can make a worker buffer megabytes of headers, or hold connections open
forever by sending a byte now and then (slowloris): httptools has no header limit, and uvicorn's
keep-alive timer is reset by every byte received. Bodies are bounded by the services themselves.
Limits come from the environment (``HttpSettings``), read once per process: uvicorn's worker processes
are spawned, so nothing set in the parent would reach them.

Every answer the protocol gives itself (431, 408, a malformed request's 400, 503 over the concurrency
limit, at shutdown or to a client that shuts down its side mid-body, the 500 of an app that fails before
it answers) is problem+json like the apps' own errors, never uvicorn's plain text. WebSocket upgrades are
not offered (``serve`` runs uvicorn with ``ws="none"``): an ``Upgrade`` header is ignored and the request
answered as plain HTTP.

A response the app cut off mid-body (an export whose client stopped reading, see p1_query.streaming) is
worthless to its client; uvicorn then calls ``transport.close()``, which waits for the unsent buffer to
drain, i.e. for a client that does not read. The socket, its buffers and its place under
``limit_concurrency`` would stay until the client leaves: such a connection is aborted (RST) after
``CUT_OFF_GRACE_S``.
"""

import asyncio
import contextlib
import functools
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any, Final, cast

from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from p1_servicekit.errors import title_of
from p1_servicekit.problems import PROBLEM_JSON, UNEXPECTED, problem_json
from p1_servicekit.settings import HttpSettings
from p1_servicekit.stopping import mark_stopping

log = logging.getLogger(__name__)

# How long a connection whose response was cut off may keep draining before it is aborted: long enough
# for the FIN to follow bytes already on their way, short enough that a stalled client holds nothing.
CUT_OFF_GRACE_S: Final = 1.0
_LINGER_ZERO: Final = struct.pack("ii", 1, 0)


@functools.cache
def head_limits() -> HttpSettings:
    return HttpSettings()


def _raw_problem(status: int, detail: str, extra_headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for a protocol that has no app to ask."""
    body = problem_json(status, detail)
    head = [f"HTTP/1.1 {status} {title_of(status)}", f"content-type: {PROBLEM_JSON}"]
    head += [f"content-length: {len(body)}", "connection: close"]
    head += [f"{name}: {value}" for name, value in extra_headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _over_capacity(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """uvicorn's answer beyond ``limit_concurrency``, as problem+json with Retry-After."""
    body = problem_json(503, "The server is at its connection limit; retry later.")
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(head_limits().retry_after_s).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _HeadTooLarge(Exception):
    """The request head went past ``HTTP_MAX_HEAD_BYTES``: answered 431."""


class _Cycle(RequestResponseCycle):
    """uvicorn's request cycle with our 500 and a hook for responses the app left incomplete. Each cycle
    uvicorn creates becomes one (``BoundedHttpToolsProtocol._start_asgi_task``): uvicorn builds it
    inside ``on_headers_complete`` and offers no factory."""

    on_cut_off: Callable[[], None]  # set with the class: the protocol's _abort_later

    async def run_asgi(self, app: ASGI3Application) -> None:
        await super().run_asgi(app)
        if not self.response_complete and self.transport.is_closing():
            self.on_cut_off()

    async def send_500_response(self) -> None:
        body = problem_json(500, UNEXPECTED)
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await self.send({"type": "http.response.start", "status": 500, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = head_limits()
        self._retry_after = (("retry-after", str(self._limits.retry_after_s)),)
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_too_large = False
        self._abort_timer: asyncio.TimerHandle | None = None
        self._lost = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._disarm_head_timer()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._arm_head_timer()  # each request on a kept-alive connection gets its own deadline

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # httptools reports our own _HeadTooLarge as a parser error; answer it as what it is.
        if self._head_too_large:
            self._send_and_close(
                431, f"The request head is larger than {self._limits.http_max_head_bytes} bytes."
            )
        else:
            self._send_and_close(400, "The request is not valid HTTP/1.1.")

    def shutdown(self) -> None:
        # A body still arriving when the server stops would keep the shutdown waiting (up to the
        # grace period) and then be cut off with a plain-text 500: answer 503 with Retry-After now,
        # and let the app see a disconnect. A request whose body is in is left to finish; an endless one
        # (a live stream) hears that the server stops and ends itself.
        mark_stopping()
        if not self._refuse_cut_body("The server is shutting down; retry later."):
            super().shutdown()

    def eof_received(self) -> None:
        # A client that shuts down its sending side mid-body will send no more of it: it hears 503 with
        # Retry-After (its upload was not taken) before the connection closes, not silence.
        self._refuse_cut_body("The request body ended before its declared length; retry later.")
        # Returning None: the transport closes itself.

    def _refuse_cut_body(self, detail: str) -> bool:
        """Answers 503 for a request whose body is still arriving, and lets its app see a disconnect;
        False when no request is in that state."""
        cycle = self.cycle
        if cycle is None or not cycle.more_body or cycle.response_started:
            return False
        self._send_and_close(503, detail, self._retry_after)
        cycle.disconnected = True
        cycle.message_event.set()
        return True

    def _unsupported_upgrade_warning(self) -> None:
        # An Upgrade header (websocket, h2c) is ignored and the request served as HTTP/1.1; uvicorn's
        # two warnings per such request (one suggesting to install a WebSocket library) would let any
        # client write to our log at will.
        pass

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        cycle.__class__ = _Cycle
        cast(_Cycle, cycle).on_cut_off = self._abort_later
        super()._start_asgi_task(cycle, _over_capacity if app is service_unavailable else app)

    def _abort_later(self) -> None:
        if self._abort_timer is None and not self._lost:
            self._abort_timer = self.loop.call_later(CUT_OFF_GRACE_S, self._abort)

    def _abort(self) -> None:
        self._abort_timer = None
        if self._lost:
            return
        # Linger 0: the close is a reset, so the kernel drops the unsent bytes too instead of keeping an
        # orphaned socket that probes a closed window for minutes.
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        self.transport.abort()

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self._limits.http_max_head_bytes:
            self._head_too_large = True
            raise _HeadTooLarge

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._limits.http_head_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            # Between requests, or a head still arriving: nothing is being served on this connection.
            timeout = self._limits.http_head_timeout_s
            self._send_and_close(408, f"The request head did not arrive within {timeout:g} s.")

    def _send_and_close(self, status: int, detail: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        if not self.transport.is_closing():
            self.transport.write(_raw_problem(status, detail, headers))
            self.transport.close()
