"""Reading a request body within limits: the size as sent is capped before anything is buffered
beyond it, and a gzip body is inflated only up to the decompressed cap (a zip bomb stops there)."""

import asyncio
import zlib
from typing import Final

from starlette.requests import ClientDisconnect, Request

from p1_servicekit.errors import (
    BadRequest,
    PayloadTooLarge,
    RequestAborted,
    RequestTimeout,
    UnsupportedMediaType,
)

# Inflating in a worker thread keeps the event loop free; below this size it is not worth a thread hop.
_THREAD_FROM: Final = 64 * 1024


def check_content_headers(request: Request) -> bool:
    """True when the body is gzip; 415 for a type other than JSON or an encoding other than gzip."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("The body must be application/json.")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise UnsupportedMediaType("Content-Encoding must be gzip or identity.")
    return encoding == "gzip"


async def read_body(request: Request, limit: int, timeout_s: float, retry_after_s: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    chunks = bytearray()
    try:
        # A client that trickles its body would otherwise hold this request (and a slot) forever.
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                chunks += chunk
                if len(chunks) > limit:
                    raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    except TimeoutError:
        raise RequestTimeout(f"The body did not arrive within {timeout_s:g} s.") from None
    except ClientDisconnect:  # the client went away, or the server is shutting down (see http_protocol)
        raise RequestAborted(retry_after_s) from None
    return bytes(chunks)


def gunzip(data: bytes, limit: int) -> bytes:
    """One gzip member, at most ``limit`` bytes once inflated."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise BadRequest("The body is not valid gzip.") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes once decompressed.")
    if not inflater.eof or inflater.unused_data:
        raise BadRequest("The body is not one complete gzip stream.")
    return out


async def inflate(data: bytes, limit: int) -> bytes:
    if len(data) < _THREAD_FROM:
        return gunzip(data, limit)
    return await asyncio.to_thread(gunzip, data, limit)
