"""The meter's monthly peaks, from its telegram to ingest (docs/design.md §8): read at start and then
daily, kept in the spool (committed, so a restart or an ingest away loses nothing), uploaded by
``PUT /v1/devices/{device_id}/meter-peaks`` until ingest stored them.

Reading goes through the poller's meter client (one request at a time, the dongle's rule); the upload is
a task of its own, like the readings' uploader. A newer read replaces a pending upload: the meter's
report is whole (13 months and the running one), so only the newest matters, and ingest keeps the newer
value of each month in any case.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from p1_edge.aio import sleep_unless, wait_any
from p1_edge.meter.client import MeterClient
from p1_edge.meter.peaks import telegram_peaks_apart
from p1_edge.spool import Spool
from p1_edge.uplink import Rejected, Retry, Stored, TooLarge, Unauthorized, Uplink

log = logging.getLogger(__name__)

SPOOL_KEY = "meter_peaks"  # {"device_id": …, "peaks": [MeterPeak, …]} waiting for upload
READ_EVERY_S = 24 * 3600.0
RETRY_READ_S = 300.0  # a telegram that could not be read (or held no peaks) is asked again this soon


class PeaksReader:
    """Asked after each good poll; reads the telegram when a read is due."""

    def __init__(self, spool: Spool, tz: ZoneInfo, ready: asyncio.Event, clock: Callable[[], float]) -> None:
        self._spool = spool
        self._tz = tz
        self._ready = ready
        self._clock = clock
        self._due = clock()  # at start

    async def after_poll(self, client: MeterClient, device_id: str) -> None:
        if self._clock() < self._due:
            return
        text = await client.telegram()
        peaks = await telegram_peaks_apart(text, self._tz) if text is not None else []
        if not peaks:
            self._due = self._clock() + RETRY_READ_S
            return
        value = json.dumps({"device_id": device_id, "peaks": peaks}, sort_keys=True)
        await asyncio.to_thread(self._spool.set_meta, SPOOL_KEY, value)
        log.info("meter peaks read", extra={"months": len(peaks), "device_id": device_id})
        self._due = self._clock() + READ_EVERY_S
        self._ready.set()


class PeaksUploader:
    """Uploads the spooled peaks until ingest stored them; backs off like the readings' uploader."""

    def __init__(
        self,
        spool: Spool,
        uplink: Uplink,
        *,
        stopping: asyncio.Event,
        ready: asyncio.Event,
        backoff_max_s: float,
        auth_retry_s: float,
    ) -> None:
        self._spool = spool
        self._uplink = uplink
        self._stopping = stopping
        self._ready = ready
        self._backoff_max = backoff_max_s
        self._auth_retry = auth_retry_s

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._ready.clear()  # before the look: a read committed after it sets it again
            value = await asyncio.to_thread(self._spool.meta, SPOOL_KEY)
            if value is None:
                await wait_any(self._ready, self._stopping, at_most_s=3600.0)
                continue
            wait_s = await self._upload(value, failures)
            failures = failures + 1 if wait_s else 0
            await sleep_unless(self._stopping, wait_s)

    async def _upload(self, value: str, failures: int) -> float:
        """One attempt: 0 when done with ``value``, else the seconds to wait before the next."""
        pending = json.loads(value)
        body = json.dumps({"peaks": pending["peaks"]}).encode()
        verdict = await self._uplink.put_peaks(pending["device_id"], body)
        match verdict:
            case Stored():
                await asyncio.to_thread(self._spool.drop_meta, SPOOL_KEY, value)
                log.info("meter peaks stored", extra={"months": len(pending["peaks"])})
                return 0.0
            case Retry(retry_after=after):
                return after if after is not None else min(self._backoff_max, 2.0**failures)
            case Unauthorized(status=status):
                log.error("ingest refuses the device token for meter peaks", extra={"status": status})
                return self._auth_retry
            case Rejected() | TooLarge():
                # Ingest calls them invalid: sending them again would not change that. Logged and kept
                # as the spool's last error; the next daily read tries afresh.
                log.error("meter peaks refused by ingest", extra={"verdict": str(verdict)})
                await asyncio.to_thread(self._spool.record_error, f"meter peaks refused: {verdict}")
                await asyncio.to_thread(self._spool.drop_meta, SPOOL_KEY, value)
                return 0.0
