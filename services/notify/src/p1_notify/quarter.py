"""Each followed device's running quarter, by ``p1_peakguard`` (the one implementation ``capacity/now``
uses too): its inputs (the counter at the quarter's start, the month's peak so far) are read from
PostgreSQL once per device and quarter, at the quarter's first reading; every other reading is computed
in memory (``running_quarter``), so following 2,000 devices costs no statement per reading.

The quarter is the reading's own (its timestamp), never the wall clock's."""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import asyncpg

from p1_peakguard import warning
from p1_peakguard.months import month_of
from p1_peakguard.price import price_eur_per_kw_year
from p1_peakguard.quarter import QuarterNow, Reading, peak_rise_eur, quarter_of, running_quarter
from p1_peakguard.store import QuarterInputs, fetch_inputs
from p1_schema.redis import LatestReading

__all__ = ["QuarterNow", "Quarters"]


@dataclass(slots=True)
class _Device:
    inputs: QuarterInputs
    guard: warning.Guard


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
    ) -> None:
        self._pool = pool
        self._tz = tz
        self._operator = grid_operator
        self._override = price_override
        self._timeout = acquire_timeout_s
        self._devices: dict[str, _Device] = {}

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
            device = _Device(inputs, device.guard if device else warning.Guard())
            self._devices[device_id] = device
        year = device.inputs.month.year
        return running_quarter(
            start_kwh=device.inputs.start_kwh,
            newest=reading,
            month_peak_kw=device.inputs.month_peak_kw,
            cap_kw=cap_kw,
            price_eur_per_kw_year=price_eur_per_kw_year(self._operator, year, self._override),
        )

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
