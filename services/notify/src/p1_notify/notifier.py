"""What notify does with each new reading of a configured device: the running quarter (the guard), a
warning when it heads over the threshold, a result when a warned quarter ended — each claimed in
PostgreSQL before it is sent (``p1_notify.store``), so at most one per device, quarter and kind.

Readings are judged by their own timestamps: the quarter is the reading's, never the wall clock's."""

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram

from p1_config.redact import describe_error
from p1_notify import messages
from p1_notify.config import DeviceConfig, NotifyConfig
from p1_notify.delivery import Delivery
from p1_notify.publish import StatePublisher
from p1_notify.quarter import Quarters
from p1_notify.store import Kind, Store
from p1_peakguard.quarter import QuarterNow, quarter_of
from p1_peakguard.warning import projects_over
from p1_schema.redis import LatestReading

log = logging.getLogger(__name__)
# A result waits this long at most for ingest's demand of the ended quarter (it is committed before the
# reading that completes the quarter is published, so it is normally there at once).
RESULT_WAIT_S: Final = 30.0
_DB_ERRORS: Final = (OSError, TimeoutError, ConnectionError)


@dataclass(slots=True)
class _Followed:
    last_ts: datetime
    quarter: datetime
    first_quarter: datetime  # the quarter in which this process began following the device
    warned: bool = False  # a warning of ``quarter`` exists (ours or another notifier's)
    # the rule asked for a warning but its claim failed (database unreachable): tried again with the next
    # reading, while the quarter still heads over
    pending: bool = False
    last: QuarterNow | None = None


class Notifier:
    def __init__(
        self,
        *,
        config: Callable[[], NotifyConfig],
        quarters: Quarters,
        store: Store,
        delivery: Delivery,
        tz: ZoneInfo,
        registry: CollectorRegistry,
        publisher: Callable[[], StatePublisher | None] = lambda: None,
    ) -> None:
        self._config = config
        self._quarters = quarters
        self._store = store
        self._delivery = delivery
        self._tz = tz
        self._publisher = publisher
        self._followed: dict[str, _Followed] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._db_down = False
        self._failed = Counter(
            "p1_notify_judge_failures",
            "Readings that could not be judged (database down, or a bug).",
            registry=registry,
        )
        self._readings = Counter(
            "p1_notify_readings", "New readings judged, by source.", ["source"], registry=registry
        )
        self._claims = Counter(
            "p1_notify_claims",
            "Notifications due, by kind and whether this notifier claimed it (won) or another had (lost).",
            ["kind", "result"],
            registry=registry,
        )
        self._delay = Histogram(
            "p1_notify_warning_delay_seconds",
            "From the reading that triggered a warning being received to the warning handed to its channels.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=registry,
        )

    async def on_reading(self, device_id: str, reading: LatestReading, source: str) -> None:
        """Judges one reading; never raises (a database outage delays a claim to the next reading)."""
        device = self._config().devices.get(device_id)
        if device is None:
            return
        state = self._followed.get(device_id)
        if state is not None and reading.ts <= state.last_ts:
            return  # not newer: a replay or the other source's copy
        self._readings.labels(source).inc()
        try:
            await self._judge(device_id, device, reading, state)
        except (*_DB_ERRORS, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self._failed.inc()
            if not self._db_down:  # once per outage: with 2,000 devices it would be 400 lines a second
                log.warning("cannot judge readings: database unavailable", extra=_why(device_id, exc))
            self._db_down = True
            return
        except Exception as exc:  # a bug: logged with its traceback, the follower goes on
            self._failed.inc()
            log.exception("cannot judge a reading", extra=_why(device_id, exc))
            return
        if self._db_down:
            self._db_down = False
            log.info("judging readings again: database available")

    async def _judge(
        self, device_id: str, device: DeviceConfig, reading: LatestReading, state: _Followed | None
    ) -> None:
        received = asyncio.get_running_loop().time()
        quarter = await self._quarters.observe(device_id, reading, device.cap_kw)
        q_start = quarter.quarter_start if quarter else quarter_of(reading.ts)
        if state is None:
            state = _Followed(reading.ts, q_start, q_start)
            self._followed[device_id] = state
        elif q_start != state.quarter:
            self._quarter_ended(device_id, device, state)
            state.quarter, state.warned, state.pending, state.last = q_start, False, False, None
        state.last_ts = reading.ts
        if quarter is not None:
            state.last = quarter
            due = self._quarters.warns(device_id, quarter)  # every state: the rule holds over time
            if not state.warned and (due or (state.pending and projects_over(quarter))):
                state.pending = True
                state.warned = await self._claim_and_send(device_id, device, quarter, received)
                state.pending = False
        publisher = self._publisher()
        if publisher is not None:
            await publisher.publish(device_id, reading, quarter, state.warned)

    async def _claim_and_send(
        self, device_id: str, device: DeviceConfig, quarter: QuarterNow, received: float
    ) -> bool:
        title, body = messages.warning(
            device_id,
            quarter.projected_kw,
            quarter.month_peak_kw,
            quarter.extra_cost_eur,
            quarter.quarter_end,
            self._tz,
            quarter.threshold_kw,
        )
        won = await self._store.claim(device_id, quarter.quarter_start, "warning", body)
        self._claims.labels("warning", "won" if won else "lost").inc()
        if won:
            self._spawn(
                self._send(device_id, device, quarter.quarter_start, "warning", title, body, received)
            )
        return True  # claimed, by us or by another notifier: this quarter is warned about

    def _quarter_ended(self, device_id: str, device: DeviceConfig, state: _Followed) -> None:
        """A result for the quarter that just ended, if it was warned about (by anyone)."""
        if state.last is None:
            return
        if state.warned or state.quarter == state.first_quarter:
            self._spawn(self._result(device_id, device, state.last, known_warned=state.warned))

    async def _result(
        self, device_id: str, device: DeviceConfig, last: QuarterNow, known_warned: bool
    ) -> None:
        start = last.quarter_start
        if not known_warned and not await self._store.warned(device_id, start):
            return
        kw = await self._final_kw(device_id, start)
        if kw is None:
            log.warning("no demand for a warned quarter; no result sent", extra={"device_id": device_id})
            return
        extra = self._quarters.peak_rise_eur(kw, last)
        title, body = messages.result(device_id, kw, last.month_peak_kw, extra)
        won = await self._store.claim(device_id, start, "result", body)
        self._claims.labels("result", "won" if won else "lost").inc()
        if won:
            await self._send(device_id, device, start, "result", title, body, None)

    async def _final_kw(self, device_id: str, start: datetime) -> float | None:
        deadline = asyncio.get_running_loop().time() + RESULT_WAIT_S
        while True:
            kw = await self._store.quarter_kw(device_id, start)
            if kw is not None or asyncio.get_running_loop().time() > deadline:
                return kw
            await asyncio.sleep(1.0)  # ingest completes the quarter with the next quarter's reading

    async def _send(
        self,
        device_id: str,
        device: DeviceConfig,
        quarter: datetime,
        kind: Kind,
        title: str,
        body: str,
        received: float | None,
    ) -> None:
        outcomes = await self._delivery.send(device.urls, kind, title, body)
        if received is not None:
            self._delay.observe(asyncio.get_running_loop().time() - received)
        log.info(
            "notification sent",
            extra={"device_id": device_id, "kind": kind, "delivered": sum(o.ok for o in outcomes)},
        )
        await self._store.sent(device_id, quarter, kind, [o.record() for o in outcomes])

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _logged(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception as exc:
            log.error("notification failed", extra={"error": describe_error(exc)})

    def forget(self, devices: Collection[str]) -> None:
        for device_id in devices:
            self._followed.pop(device_id, None)
        self._quarters.forget(devices)

    async def drain(self, timeout_s: float) -> None:
        """Waits (bounded) for the notifications in flight, at shutdown."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)


def _why(device_id: str, exc: BaseException) -> dict[str, object]:
    return {"device_id": device_id, "error": describe_error(exc)}
