"""``p1-edge run``: wires meter, spool, uplink and metrics together and runs until SIGTERM.

Polling and uploading are independent tasks: the meter keeps being read while ingest is away, and a
backlog drains while the meter is away. SIGTERM/SIGINT stop polling at once and let the uploader
finish the batch in flight (its answer decides whether those readings leave the spool).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from p1_config.redact import describe_error, redact
from p1_edge.httpserver import HttpServer, Request, Response
from p1_edge.meter.client import MeterClient
from p1_edge.meter.detect import connect
from p1_edge.meter.errors import MeterError
from p1_edge.meter.localtime import STATE_KEY, ClockState, LocalClock
from p1_edge.meter_peaks import PeaksReader, PeaksUploader
from p1_edge.metrics import EdgeMetrics
from p1_edge.poller import Poller
from p1_edge.report import EdgeReport
from p1_edge.settings import EdgeSettings
from p1_edge.spool import Spool
from p1_edge.uplink import Uplink
from p1_edge.uploader import Uploader

if TYPE_CHECKING:
    from p1_edge.meter.discovery import Discovery

log = logging.getLogger(__name__)

STOP_GRACE_S = 45.0  # the batch in flight may take up to UPLOAD_TIMEOUT_S (30 s) to answer


class Edge:
    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.metrics = EdgeMetrics()
        self.stopping = asyncio.Event()
        self.spooled = asyncio.Event()
        self.peaks_ready = asyncio.Event()  # the meter's peaks are in the spool, waiting for upload
        self.spool = Spool(settings.spool_path, settings.spool_max_rows, settings.spool_sync)
        self.discovery = None if settings.p1_host else _discovery()
        self.poller: Poller | None = None
        self.report = EdgeReport(self.spool)
        self.metrics.watch_spool(lambda: self.spool.depth, self.spool.oldest_ts)
        token = settings.device_token.get_secret_value() if settings.device_token else ""
        self.uplink = Uplink(
            settings.ingest_url,
            token,
            ca_bundle=settings.ca_bundle,
            timeout_s=settings.upload_timeout_s,
        )
        self.metrics_server = HttpServer(self._serve_metrics, settings.metrics_host, settings.metrics_port)

    def _discovered_host(self) -> str:
        """The discovered meter's host:port; raises MeterError while there is none to choose."""
        assert self.discovery is not None
        from p1_edge.meter.discovery import choose

        s = self.settings
        return choose(self.discovery.found, s.p1_serial, s.device_id).host

    def _meter_moved(self, client: MeterClient) -> bool:
        if self.discovery is None:
            return False
        try:
            return self._discovered_host() != client.host
        except MeterError:
            return False  # gone from mDNS for now: keep trying the address it last had

    async def _connect_meter(self) -> tuple[MeterClient, str]:
        s = self.settings
        host = s.p1_host or self._discovered_host()
        client, device = await connect(
            host,
            s.p1_api,
            s.zone,
            token=s.p1_token.get_secret_value() if s.p1_token else None,
            timeout_s=s.p1_timeout_s,
            ca_file=str(s.p1_ca_file) if s.p1_ca_file else None,
            insecure=s.p1_insecure,
        )
        device_id = s.device_id or device.serial
        log.info("spooling readings", extra={"device_id": device_id})
        return client, device_id

    async def _serve_metrics(self, request: Request) -> Response:
        if request.path == "/metrics":
            body = await asyncio.to_thread(generate_latest, self.metrics.registry)
            return Response(200, body, CONTENT_TYPE_LATEST)
        if request.path == "/healthz":
            return Response(200, json.dumps({"status": "ok"}).encode())
        if request.path == "/readyz":
            problem = self._not_ready()
            status = 503 if problem else 200
            return Response(status, json.dumps({"status": problem or "ready"}).encode())
        return Response(404, b'{"error":"not found"}')

    def _not_ready(self) -> str | None:
        """Why the edge is not ready, or None. Ready: the spool is open and the poller finished a poll
        (whatever its result: an absent meter is reported by the metrics, not by readiness) within
        the last ``3 × POLL_INTERVAL_S + 2 × P1_TIMEOUT_S`` (a slow meter and a telegram read)."""
        if not self.spool.is_open:
            return "spool closed"
        last = self.poller.last_run if self.poller is not None else None
        if last is None:
            return "starting: no poll yet"
        s = self.settings
        if time.monotonic() - last > 3 * s.poll_interval_s + 2 * s.p1_timeout_s:
            return "poller stalled"
        return None

    async def run(self) -> int:
        """Runs until SIGTERM/SIGINT (exit code 0) or until a task fails (1: let a supervisor restart
        the edge rather than go on half-alive, e.g. polling without a working spool)."""
        loop = asyncio.get_running_loop()
        # One worker thread, not asyncio's default pool of up to 32: the spool is serialised by its
        # lock anyway, and every extra thread costs a malloc arena (megabytes of RSS on a Pi).
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1, thread_name_prefix="p1-edge-io"))
        if not await self._serve_metrics_or_fail():
            return 2
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        if self.discovery is not None:
            await self.discovery.start()
        log.info(
            "p1-edge running",
            extra={
                "meter": self.settings.p1_host or "found by mDNS",
                "ingest": redact(self.settings.ingest_url),
                "spool": str(self.settings.spool_path),
                "waiting": self.spool.depth,
                "metrics_port": self.metrics_server.port,
            },
        )
        poller, uploader, peaks = self._workers()
        poll_task = asyncio.create_task(poller.run(), name="poll")
        upload_task = asyncio.create_task(uploader.run(), name="upload")
        peaks_task = asyncio.create_task(peaks.run(), name="peaks")
        stop_task = asyncio.create_task(self.stopping.wait(), name="stop")
        try:
            exit_code = await self._until_stopped(poll_task, upload_task, peaks_task, stop_task)
        finally:
            stop_task.cancel()
            for task in (poll_task, upload_task, peaks_task):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await self._close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        log.info("p1-edge stopped; readings stay spooled", extra={"waiting": self.spool.depth})
        return exit_code

    async def _serve_metrics_or_fail(self) -> bool:
        try:
            await self.metrics_server.start()
        except OSError as exc:
            s = self.settings
            where = {"host": s.metrics_host, "port": s.metrics_port, "error": describe_error(exc)}
            log.critical("cannot serve metrics", extra=where)
            await self.uplink.aclose()
            self.spool.close()
            return False
        return True

    def _workers(self) -> tuple[Poller, Uploader, PeaksUploader]:
        s = self.settings
        clock = LocalClock(s.zone, ClockState.loads(self.spool.meta(STATE_KEY)))
        reader = PeaksReader(self.spool, s.zone, self.peaks_ready, time.monotonic)
        self.poller = Poller(
            self._connect_meter,
            self.spool,
            self.metrics,
            s.poll_interval_s,
            self.stopping,
            self.spooled,
            clock,
            self._meter_moved,
            self.report,
            reader.after_poll,
        )
        uploader = Uploader(
            self.spool,
            self.uplink,
            self.metrics,
            batch_max=s.upload_batch_max,
            interval_s=s.upload_interval_s,
            backoff_max_s=s.backoff_max_s,
            auth_retry_s=s.auth_retry_s,
            stopping=self.stopping,
            spooled=self.spooled,
            report=self.report,
        )
        peaks = PeaksUploader(
            self.spool,
            self.uplink,
            stopping=self.stopping,
            ready=self.peaks_ready,
            backoff_max_s=s.backoff_max_s,
            auth_retry_s=s.auth_retry_s,
        )
        return self.poller, uploader, peaks

    async def _until_stopped(
        self,
        poll_task: asyncio.Task[None],
        upload_task: asyncio.Task[None],
        peaks_task: asyncio.Task[None],
        stop_task: asyncio.Task[bool],
    ) -> int:
        """Waits for a stop request or a task's end; 1 when a task ended on its own (a failure)."""
        exit_code = 0
        workers = {poll_task, upload_task, peaks_task}
        done, _ = await asyncio.wait({*workers, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        for task in (poll_task, upload_task, peaks_task):
            # A task may end in the same tick as a stop request, because of it: not a failure.
            if task in done and (task.exception() is not None or not self.stopping.is_set()):
                exit_code = 1
                log.critical(
                    "a task ended unexpectedly: stopping the edge (readings stay spooled)",
                    exc_info=task.exception(),
                    extra={"task": task.get_name()},
                )
        self.stopping.set()
        # The poller only ever waits on the meter or the clock: stop it at once. The uploader gets to
        # finish the batch in flight (its answer decides whether it leaves the spool).
        poll_task.cancel()
        peaks_task.cancel()  # what it has not stored stays in the spool
        await asyncio.wait({poll_task, peaks_task})
        _, busy = await asyncio.wait({upload_task}, timeout=STOP_GRACE_S)
        if busy:
            log.warning(
                "upload still busy: abandoning it (it will be resent)", extra={"grace_s": STOP_GRACE_S}
            )
        return exit_code

    async def _close(self) -> None:
        await self.uplink.aclose()
        await self.metrics_server.close()
        if self.discovery is not None:
            await self.discovery.close()
        self.spool.close()

    def _request_stop(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            log.info("finishing the current batch, then stopping", extra={"signal": sig.name})
        self.stopping.set()


def _discovery() -> Discovery:
    """zeroconf is imported only by an edge that discovers its meter (P1_HOST unset): ~4 MB resident
    that a configured edge, the common case on a Pi, does not carry (bench/edge.py: steady RSS < 50 MB)."""
    from p1_edge.meter.discovery import Discovery

    return Discovery()
