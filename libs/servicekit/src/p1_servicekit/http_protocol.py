"""uvicorn's httptools protocol with the two bounds it lacks: the size of a request head (request
line + headers) and the time a client may take to send it.

Without them one client can make a worker buffer megabytes of headers, or hold connections open
forever by sending a byte now and then (slowloris): httptools has no header limit, and uvicorn's
keep-alive timer is reset by every byte received. Bodies are bounded by the services themselves.
Limits come from the environment (HTTP_MAX_HEAD_BYTES, HTTP_HEAD_TIMEOUT_S), read once per process:
uvicorn's worker processes are spawned, so nothing set in the parent would reach them.
"""

import asyncio
import functools
import logging
import os
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("p1.http")


@dataclass(frozen=True)
class HeadLimits:
    max_bytes: int
    timeout_s: float


@functools.cache
def head_limits() -> HeadLimits:
    return HeadLimits(
        max_bytes=int(os.environ.get("HTTP_MAX_HEAD_BYTES", 32 * 1024)),
        timeout_s=float(os.environ.get("HTTP_HEAD_TIMEOUT_S", 10.0)),
    )


class _HeadTooLarge(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = head_limits()
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
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
            self._send_and_close(b"431 Request Header Fields Too Large", "Request head too large.")
        else:
            super().send_400_response(msg)

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self._limits.max_bytes:
            self._head_too_large = True
            raise _HeadTooLarge

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._limits.timeout_s, self._head_timed_out)

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
            self._send_and_close(b"408 Request Timeout", "Request head not received in time.")

    def _send_and_close(self, status: bytes, msg: str) -> None:
        body = msg.encode()
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
        )
        self.transport.close()
