"""Small asyncio helpers shared by the poller and the uploader."""

from __future__ import annotations

import asyncio
import contextlib


async def sleep_unless(event: asyncio.Event, seconds: float) -> None:
    """Sleeps ``seconds`` or until ``event`` is set, whichever comes first (a stop request)."""
    if seconds <= 0 or event.is_set():
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def wait_any(*events: asyncio.Event, at_most_s: float) -> None:
    """Returns when one of ``events`` is set or after ``at_most_s`` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=at_most_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
