"""The ``quarter`` events of live streams: the ``capacity/now`` JSON (``p1_query.capacity_now``, computed
by ``p1_peakguard``) of a device, shared by every stream of this process.

Each stream asks at most once a second, after new readings. An answer computed from a reading at least
as new as the asker's is reused, and one computation in progress is awaited by every stream that asks
meanwhile: 2,000 streams watching 200 devices cost about one computation per new reading, not 2,000.
At most ``concurrency`` computations hold a database connection at once (a quarter of the pool), so 200
streams opening together cannot starve the pool the other answers need.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from p1_query.zones import parse_tz
from p1_servicekit.errors import NotFound

MAX_ENTRIES: Final = 10_000

# (device id, zone name) → the capacity/now JSON; NotFound when the device has no good reading.
Compute = Callable[[str, str], Awaitable[bytes]]
_Key = tuple[str, str]


class QuarterEvents:
    def __init__(self, compute: Compute, concurrency: int) -> None:
        self._compute = compute
        self._gate = asyncio.Semaphore(concurrency)
        self._done: dict[_Key, tuple[float, bytes | None]] = {}  # reading's ts when computed, answer
        self._running: dict[_Key, asyncio.Task[bytes | None]] = {}

    def ready(self, device_id: str, tz: str, reading_ts: float) -> tuple[bool, bytes | None]:
        """(True, the JSON) when an answer at least as new as ``reading_ts`` is at hand; else (False, None).
        No task and no await for a hit: the other streams of a device just read what the first computed."""
        done = self._done.get((device_id, tz))
        if done is not None and done[0] >= reading_ts:
            return True, done[1]
        return False, None

    async def get(self, device_id: str, tz: str, reading_ts: float) -> bytes | None:
        """The JSON for a stream that has seen the reading of ``reading_ts``; None without a reading."""
        key = (device_id, tz)
        done = self._done.get(key)
        if done is not None and done[0] >= reading_ts:
            return done[1]
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._run(key, reading_ts))
            self._running[key] = task
        # Shielded: one stream that goes away must not cancel the others' answer.
        return await asyncio.shield(task)

    async def _run(self, key: _Key, reading_ts: float) -> bytes | None:
        try:
            try:
                async with self._gate:
                    body: bytes | None = await self._compute(*key)
            except NotFound:
                body = None
            if len(self._done) >= MAX_ENTRIES:
                self._done.clear()  # bounded; refilled by the next asks
            self._done[key] = (reading_ts, body)
            return body
        finally:
            del self._running[key]


def check_tz(name: str | None, default: str) -> str:
    """The stream's zone (its month's peak is the month of that zone): 422 for one the contract lacks."""
    chosen = name if name is not None else default
    parse_tz(chosen)
    return chosen
