"""Polls the meter every ``POLL_INTERVAL_S`` and commits each new reading to the spool.

Failures are counted per poll but logged only when their kind changes, so a meter that is away for
a night writes two log lines, not 30,000. Errors only the user can fix get one clear line with a hint.
Each telegram is stored once (``meter/repeats.py``); the meter's local times are placed by one
:class:`~p1_edge.meter.localtime.LocalClock`, whose state is committed with every reading.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from p1_edge.aio import sleep_unless
from p1_edge.meter.client import MeterClient
from p1_edge.meter.errors import MeterError, MeterNeedsUser, MeterUnreachable
from p1_edge.meter.localtime import STATE_KEY, LocalClock
from p1_edge.meter.repeats import Repeats
from p1_edge.metrics import EdgeMetrics
from p1_edge.report import EdgeReport
from p1_edge.spool import Spool

log = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[tuple[MeterClient, str]]]
Moved = Callable[[MeterClient], bool]  # the meter is now elsewhere (mDNS): reconnect
AfterPoll = Callable[[MeterClient, str], Awaitable[None]]  # e.g. the meter's peaks, when due


def _never_moves(_client: MeterClient) -> bool:
    return False


class Poller:
    def __init__(
        self,
        connect: Connect,
        spool: Spool,
        metrics: EdgeMetrics,
        interval_s: float,
        stopping: asyncio.Event,
        spooled: asyncio.Event,
        clock: LocalClock,
        moved: Moved = _never_moves,
        report: EdgeReport | None = None,
        after_poll: AfterPoll | None = None,
    ) -> None:
        self._report = report  # counts failed polls for the edge's report to ingest
        self._connect = connect
        self._moved = moved
        self._spool = spool
        self._metrics = metrics
        self._interval = interval_s
        self._stopping = stopping
        self._spooled = spooled
        self._clock = clock
        self._after_poll = after_poll
        self._repeats = Repeats()
        self._last_problem: str | None = None
        self.last_run: float | None = None  # monotonic end of the last poll, whatever its result

    async def run(self) -> None:
        client: MeterClient | None = None
        device_id = ""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while not self._stopping.is_set():
                try:
                    if client is not None and self._moved(client):
                        await client.aclose()
                        client = None
                    if client is None:
                        client, device_id = await self._connect()
                    await self._poll_once(client, device_id)
                    if self._after_poll is not None:
                        await self._after_poll(client, device_id)
                except MeterError as exc:
                    self._failed(exc)
                self.last_run = time.monotonic()
                next_at += self._interval
                now = loop.time()
                if next_at < now:  # we fell behind (slow meter): skip, don't burst
                    next_at = now
                await sleep_unless(self._stopping, next_at - now)
        finally:
            if client is not None:
                await client.aclose()

    async def _poll_once(self, client: MeterClient, device_id: str) -> None:
        # Whole seconds: the meter refreshes once per second, so two polls in one second are one
        # reading (v1 has no reading time of its own; v2's is in whole seconds too).
        polled_at = datetime.fromtimestamp(int(time.time()), UTC)
        reading = await client.reading(polled_at, self._clock)
        self._metrics.polls.labels("ok").inc()
        if self._repeats.is_repeat(reading):
            return  # the same telegram again: nothing new to keep
        state = self._clock.state
        meta = {STATE_KEY: state.dumps()} if state is not None else None
        dropped = await asyncio.to_thread(self._spool.append, device_id, reading.meter, reading.sample, meta)
        if dropped:
            self._metrics.spool_dropped.inc(dropped)
        self._spooled.set()
        if self._last_problem is not None:
            log.info("meter readings flow again")
            self._last_problem = None

    def _failed(self, exc: MeterError) -> None:
        if isinstance(exc, MeterNeedsUser):
            result, message = "needs_user", f"{exc}: {exc.hint}"
        elif isinstance(exc, MeterUnreachable):
            result, message = "unreachable", str(exc)
        else:
            result, message = "bad_response", str(exc)
        self._metrics.polls.labels(result).inc()
        if self._report is not None:
            self._report.meter_failed()
        kind = f"{type(exc).__name__}"
        if kind != self._last_problem:
            level = logging.ERROR if result == "needs_user" else logging.WARNING
            log.log(level, "meter poll failed", extra={"result": result, "problem": message})
            self._last_problem = kind
