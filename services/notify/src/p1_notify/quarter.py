"""Each followed device's running quarter, by ``p1_peakguard`` (the one implementation ``capacity/now``
uses too): its inputs (the counter at the quarter's start, the month's peak so far) are read from
PostgreSQL once per device and quarter, at the quarter's first reading; every other reading is computed
in memory (``running_quarter``), so following 2,000 devices costs no statement per reading. The counted
peaks of the 11 months before (``store.past_counted``, for the 12-month average Home Assistant shows) are
read once per device and local month, at the month's first quarter seen; a failed read leaves the average
unknown (None) and is tried again at the device's next quarter.

The quarter is the reading's own (its timestamp), never the wall clock's."""

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

import asyncpg
from prometheus_client import CollectorRegistry, Counter

from p1_config.redact import describe_error
from p1_peakguard import warning
from p1_peakguard.months import Month, month_of
from p1_peakguard.price import price_eur_per_kw_year
from p1_peakguard.quarter import QuarterNow, Reading, peak_rise_eur, quarter_of, running_quarter
from p1_peakguard.store import Conn, QuarterInputs, fetch_inputs, past_counted
from p1_schema.redis import LatestReading

__all__ = ["QuarterNow", "Quarters"]

log = logging.getLogger(__name__)
_DB_ERRORS: Final = (OSError, TimeoutError, ConnectionError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(frozen=True, slots=True)
class _Past:
    month: Month  # the running month these are the 11 months before of
    counted_kw: list[float]  # ``past_counted``


@dataclass(slots=True)
class _Device:
    inputs: QuarterInputs
    guard: warning.Guard
    past: _Past | None = None  # None: not read yet, or the read failed


def reading_of(latest: LatestReading) -> Reading | None:
    """The import counter and power of a reading, or None when it lacks either (no quarter from it)."""
    kwh, power = latest.fields.get("import_kwh"), latest.fields.get("power_w")
    if not isinstance(kwh, int | float) or not isinstance(power, int | float):
        return None
    return Reading(latest.ts, float(kwh), float(power))


class Quarters:
    def __init__(
        self,
        pool: "asyncpg.Pool[asyncpg.Record]",
        tz: ZoneInfo,
        grid_operator: str | None,
        price_override: float | None,
        acquire_timeout_s: float,
        registry: CollectorRegistry,
    ) -> None:
        self._pool = pool
        self._tz = tz
        self._operator = grid_operator
        self._override = price_override
        self._timeout = acquire_timeout_s
        self._devices: dict[str, _Device] = {}
        self._past_down = False
        self._past_failed = Counter(
            "p1_notify_past_peaks_failures",
            "Reads of a device's past months' peaks that failed (database down): its 12-month average is"
            " unknown until the read succeeds at one of its next quarters.",
            registry=registry,
        )

    def price(self, quarter: QuarterNow) -> float:
        """€/kW/year of the quarter's local month's year."""
        year = month_of(quarter.quarter_start, self._tz).year
        return price_eur_per_kw_year(self._operator, year, self._override)

    async def observe(self, device_id: str, latest: LatestReading, cap_kw: float | None) -> QuarterNow | None:
        """The running quarter after this reading (None: the reading has no counter or power, or the
        device no good reading in PostgreSQL yet)."""
        reading = reading_of(latest)
        if reading is None:
            return None
        device = self._devices.get(device_id)
        if device is None or quarter_of(device.inputs.newest.ts) != quarter_of(reading.ts):
            async with self._pool.acquire(timeout=self._timeout) as conn:
                inputs = await fetch_inputs(conn, device_id, self._tz, newest=reading)
                if inputs is None:
                    return None
                past = device.past if device else None
                if past is None or past.month != inputs.month:
                    past = await self._past(conn, device_id, inputs.month)
            device = _Device(inputs, device.guard if device else warning.Guard(), past)
            self._devices[device_id] = device
        year = device.inputs.month.year
        return running_quarter(
            start_kwh=device.inputs.start_kwh,
            newest=reading,
            month_peak_kw=device.inputs.month_peak_kw,
            cap_kw=cap_kw,
            price_eur_per_kw_year=price_eur_per_kw_year(self._operator, year, self._override),
            past_counted_kw=None if device.past is None else device.past.counted_kw,
        )

    async def _past(self, conn: Conn, device_id: str, month: Month) -> _Past | None:
        """The past months' counted peaks; None when they cannot be read (the warnings do not need
        them: only the 12-month average is unknown meanwhile)."""
        try:
            counted = await past_counted(conn, device_id, month, self._tz)
        except _DB_ERRORS as exc:
            self._past_failed.inc()
            if not self._past_down:  # once per outage, as the judge's failures
                log.warning(
                    "cannot read the past months' peaks; 12-month average unknown",
                    extra={"device_id": device_id, "error": describe_error(exc)},
                )
            self._past_down = True
            return None
        if self._past_down:
            self._past_down = False
            log.info("past months' peaks read again")
        return _Past(month, counted)

    def forget(self, devices: Collection[str]) -> None:
        for device_id in devices:
            self._devices.pop(device_id, None)

    def warns(self, device_id: str, quarter: QuarterNow) -> bool:
        """The warning rule (``p1_peakguard.warning``) over this device's states in time order."""
        device = self._devices.get(device_id)
        if device is None:
            return False
        device.guard, warn = warning.step(device.guard, quarter)
        return warn

    def peak_rise_eur(self, kw: float, last: QuarterNow) -> float:
        """What a completed quarter of ``kw`` adds over the next 12 months (``last``: its final state)."""
        return peak_rise_eur(kw, last.month_peak_kw, self.price(last))
