"""A deliberately tiny HTTP/1.1 server on asyncio streams.

Why not uvicorn: the edge runs on a Raspberry Pi and only needs two small endpoints (``/metrics``,
``/healthz``) plus the simulator's handful of routes. A few dozen lines on ``asyncio.start_server``
keep the process light and give the simulator full control over faults (hangs, broken bodies).
Keep-alive is supported because httpx reuses connections; bodies need ``Content-Length``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

log = logging.getLogger(__name__)

_MAX_HEADER_BYTES = 16 * 1024
_MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves ``handler`` on host:port (TLS when ``ssl_context`` is given) until ``close()``."""

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        sockname: tuple[str, int] = self._server.sockets[0].getsockname()[:2]
        return sockname[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self._host, self._port, ssl=self._ssl)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                response = await self._handler(request)
                keep_alive = request.headers.get("connection", "").lower() != "close"
                writer.write(_render(response, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            return  # a client that went away or spoke garbage: nothing to answer
        except asyncio.CancelledError:
            # close() cancels idle keep-alive connections. Swallowed on purpose: on Python 3.11 the
            # streams callback calls task.exception() on a cancelled task and logs a traceback.
            return
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError as exc:
        raise ValueError("header too large") from exc
    if len(head) > _MAX_HEADER_BYTES:
        raise ValueError("header too large")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length < 0 or length > _MAX_BODY_BYTES:
        raise ValueError("bad content-length")
    body = await reader.readexactly(length) if length else b""
    return Request(method=method, path=target.split("?", 1)[0], headers=headers, body=body)


def _render(response: Response, keep_alive: bool) -> bytes:
    reason = HTTPStatus(response.status).phrase
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    if response.content_type:  # empty for answers without a body (204)
        lines.append(f"Content-Type: {response.content_type}")
    lines += [
        f"Content-Length: {len(response.body)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    lines += [f"{k}: {v}" for k, v in response.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body
