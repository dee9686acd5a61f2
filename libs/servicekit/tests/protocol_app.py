"""A bare ASGI app for tests of the HTTP protocol under ``p1_servicekit.serve`` (a real uvicorn process):
what the protocol does when an app cuts a response off, fails before answering, or answers nothing.
Not FastAPI on purpose: FastAPI's own error middleware would answer before the protocol is asked."""

from typing import Any, Final

import anyio

CHUNK: Final = b"x" * 65536
# How long the cut-off route waits for its client to take a chunk before it gives up (as an export does).
SEND_TIMEOUT_S: Final = 0.5


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _cut_off(send: Any) -> None:
    """Streams until a chunk is not taken within SEND_TIMEOUT_S, then returns mid-body."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for _ in range(10_000):
        with anyio.move_on_after(SEND_TIMEOUT_S) as waited:
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        if waited.cancelled_caught:
            return


async def _read_body(receive: Any, send: Any) -> None:
    """Reads the whole body, then answers its length; says nothing to a client that went away."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = str(size).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]}
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "websocket":  # refused, as Starlette refuses a WebSocket no route takes
        await send({"type": "websocket.close"})
        return
    path = scope["path"]
    if path == "/cut":
        await _cut_off(send)
    elif path == "/body":
        await _read_body(receive, send)
    elif path == "/raise":
        raise RuntimeError("a bug before any answer")
    elif path == "/silent":
        return  # returns without answering
    else:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


def make_app() -> Any:
    return app
