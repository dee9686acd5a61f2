"""Moves readings from the spool to ingest: oldest first, full batches, until told to stop.

Decisions per verdict (see :mod:`p1_edge.uplink`): Stored → ack; TooLarge → halve the batch size (and
keep it halved: a proxy's limit does not go away); Rejected with ``bisect`` (422) → bisect down to the
offending reading(s) so valid ones still get through, quarantine a single bad reading, then double the
size again after each success (many bad readings cost one request each, not a bisection each); any other
Rejected → quarantine the batch; Unauthorized → stop uploading, say so loudly, try again only every
``AUTH_RETRY_S``; Retry → tenacity's exponential backoff with jitter, capped, or the server's
``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from tenacity import AsyncRetrying, RetryCallState, retry_if_result, wait_exponential_jitter
from tenacity.wait import wait_base

from p1_edge.aio import sleep_unless, wait_any
from p1_edge.metrics import EdgeMetrics
from p1_edge.report import EdgeReport
from p1_edge.spool import Batch, Spool
from p1_edge.uplink import (
    GZIP_LEVEL,
    Rejected,
    Retry,
    Stored,
    TooLarge,
    Unauthorized,
    Uplink,
    Verdict,
)

log = logging.getLogger(__name__)

# The loud line of a refused DEVICE_TOKEN (logged, and the spool's last error for ``p1-edge status``).
_REFUSED = (
    "ingest refused DEVICE_TOKEN. UPLOADS STOPPED; readings keep being spooled. Check DEVICE_TOKEN on the "
    "edge and DEVICE_TOKENS on ingest"
)
RETRY_AFTER_MAX_S = 900.0  # a server asking for more than 15 minutes is ignored beyond that


class WaitRetryAfter(wait_base):
    """The server's Retry-After when it gave one, else the fallback (exponential with jitter)."""

    def __init__(self, fallback: wait_base) -> None:
        self._fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        verdict = _last_verdict(retry_state)
        if isinstance(verdict, Retry) and verdict.retry_after is not None:
            return min(verdict.retry_after, RETRY_AFTER_MAX_S)
        return self._fallback(retry_state)


def _last_verdict(state: RetryCallState) -> Verdict | None:
    outcome = state.outcome
    if outcome is None or outcome.failed:
        return None
    verdict: Verdict = outcome.result()
    return verdict


class Uploader:
    def __init__(
        self,
        spool: Spool,
        uplink: Uplink,
        metrics: EdgeMetrics,
        *,
        batch_max: int,
        interval_s: float,
        backoff_max_s: float,
        auth_retry_s: float,
        stopping: asyncio.Event,
        spooled: asyncio.Event,
        report: EdgeReport | None = None,
    ) -> None:
        self._spool = spool
        self._report = report  # sent with each batch (SampleBatch ``edge``) when given
        self._uplink = uplink
        self._metrics = metrics
        self._batch_max = batch_max
        self._size_limit = batch_max  # lowered by 413s
        self._probe = batch_max  # lowered while bisecting a 422
        self._interval = interval_s
        self._backoff_max = backoff_max_s
        self._auth_retry = auth_retry_s
        self._stopping = stopping
        self._spooled = spooled

    async def run(self) -> None:
        # While a full batch is on the wire, the next one is read and compressed in the worker
        # thread: a backlog then drains at the pace of ingest, not of ingest plus the edge.
        ahead: asyncio.Task[Batch | None] | None = None
        try:
            while not self._stopping.is_set():
                size = min(self._size_limit, self._probe)
                self._spooled.clear()
                if ahead is not None:
                    batch, ahead = await ahead, None
                else:
                    batch = await asyncio.to_thread(self._prepare, size, 0)
                if batch is None:
                    await self._wait_for_readings()
                    continue
                if batch.count == size:
                    ahead = asyncio.ensure_future(asyncio.to_thread(self._prepare, size, batch.last_id))
                verdict = await self._send(batch)
                if isinstance(verdict, Retry):
                    return  # only when a stop cut the retries short
                await self._handle(batch, size, verdict)
                if not isinstance(verdict, Stored) or min(self._size_limit, self._probe) != size:
                    await _discard(ahead)  # read with the old size or before a quarantine
                    ahead = None
        finally:
            await _discard(ahead)

    def _prepare(self, size: int, after_id: int) -> Batch | None:
        edge = None if self._report is None else self._report.json()
        return self._spool.peek_gzip(size, after_id, GZIP_LEVEL, edge)

    async def _send(self, batch: Batch) -> Verdict:
        """The batch's verdict, after retrying while it says Retry; a Retry only when stopping."""
        attempts = 0

        async def attempt() -> Verdict:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and self._stopping.is_set():
                return Retry("stopping")  # a stop came during the back-off: post nothing more
            verdict = await self._uplink.post(batch.payload)
            if isinstance(verdict, Retry):
                self._metrics.upload_batches.labels(verdict.label).inc()
            return verdict

        retrying = AsyncRetrying(
            retry=retry_if_result(lambda verdict: isinstance(verdict, Retry)),
            wait=WaitRetryAfter(wait_exponential_jitter(initial=1, max=self._backoff_max, jitter=1)),
            stop=lambda _state: self._stopping.is_set(),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            retry_error_callback=lambda state: _last_verdict(state),
        )
        verdict: Verdict = await retrying(attempt)
        return verdict

    async def _handle(self, batch: Batch, size: int, verdict: Verdict) -> None:
        self._metrics.upload_batches.labels(verdict.label).inc()
        match verdict:
            case Stored():
                await self._stored(batch, size)
            case Unauthorized(status=status, detail=detail):
                log.error(
                    _REFUSED, extra={"status": status, "detail": detail, "retry_in_s": self._auth_retry}
                )
                status_line = f"{_REFUSED} (HTTP {status}: {detail}); retrying in {self._auth_retry:.0f} s"
                await asyncio.to_thread(self._spool.record_error, status_line)
                await self._sleep(self._auth_retry)
            case TooLarge() if batch.count > 1:
                self._size_limit = max(1, batch.count // 2)
                log.warning("ingest says 413 too large: batch halved", extra={"batch_max": self._size_limit})
            case Rejected(bisect=True) if batch.count > 1:
                self._probe = max(1, batch.count // 2)  # find the bad reading(s), deliver the rest
            case TooLarge(detail=detail):
                await self._quarantine(batch, 413, detail)
            case Rejected(status=status, detail=detail):
                await self._quarantine(batch, status, detail)
            case Retry():
                raise AssertionError("a Retry verdict is handled by _send")

    async def _stored(self, batch: Batch, size: int) -> None:
        # after a bisection, grow back step by step: if many readings are bad (a meter clock far
        # ahead), each costs one request instead of a new bisection from full size
        self._probe = min(self._batch_max, self._probe * 2)
        await asyncio.to_thread(self._spool.ack, batch)
        self._metrics.uploaded_samples.inc(batch.count)
        self._metrics.last_upload.set(time.time())
        if batch.count < size:  # caught up: no need to hammer ingest, one request per interval
            await self._sleep(self._interval)

    async def _quarantine(self, batch: Batch, status: int, detail: str) -> None:
        quarantined = await asyncio.to_thread(self._spool.quarantine, batch, status, detail)
        self._metrics.quarantined.inc(quarantined)
        where = {"readings": quarantined, "status": status, "detail": detail}
        log.error("ingest rejected readings: moved to quarantine", extra=where)

    async def _log_retry(self, state: RetryCallState) -> None:
        verdict = _last_verdict(state)
        reason = verdict.reason if isinstance(verdict, Retry) else "unknown"
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        # The first failure and then every tenth: an outage of an hour must not flood the log.
        if state.attempt_number == 1 or state.attempt_number % 10 == 0:
            where = {"attempt": state.attempt_number, "retry_in_s": round(wait, 1), "reason": reason}
            log.warning("upload failed, retrying", extra=where)
            await asyncio.to_thread(self._spool.record_error, f"upload failed: {reason}")

    async def _wait_for_readings(self) -> None:
        await wait_any(self._spooled, self._stopping, at_most_s=max(self._interval, 1.0))

    async def _sleep(self, seconds: float) -> None:
        await sleep_unless(self._stopping, seconds)


async def _discard(task: asyncio.Task[Batch | None] | None) -> None:
    """Drops a batch read ahead; the thread finishes its read, nothing else happens."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
