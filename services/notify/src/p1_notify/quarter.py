"""STAND-IN until ``p1_peakguard`` (helper "quarter") is merged: the running quarter of a device as
notify needs it, judged by the readings' own timestamps. Replaced by the library's one implementation.

The interface notify uses: :class:`QuarterNow`, :class:`Guard` (``observe`` a reading → the quarter so
far; ``warns``; ``extra_cost_eur``)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg

from p1_schema.redis import LatestReading

QUARTER_S: Final = 900
FLOOR_KW: Final = 2.5
# A warning needs the projection over the threshold at least this long (a kettle's 2 minutes is not).
SUSTAIN_S: Final = 60.0
# and no later than this before the quarter's end (a warning after it is too late to act on).
LAST_WARN_S: Final = 0.0


@dataclass(frozen=True, slots=True)
class QuarterNow:
    quarter_start: datetime
    quarter_end: datetime
    elapsed_s: float
    energy_kwh: float
    kw_so_far: float
    power_w: float
    projected_kw: float
    month_peak_kw: float | None
    threshold_kw: float
    headroom_kw: float
    extra_cost_eur: float
    as_of: datetime


def quarter_of(ts: datetime) -> datetime:
    seconds = int(ts.timestamp()) // QUARTER_S * QUARTER_S
    return datetime.fromtimestamp(seconds, UTC)


def month_start(ts: datetime) -> datetime:
    u = ts.astimezone(UTC)
    return datetime(u.year, u.month, 1, tzinfo=UTC)


@dataclass(slots=True)
class _Device:
    quarter: datetime
    start_kwh: float
    last_ts: datetime
    last_kwh: float
    month: datetime
    month_peak_kw: float | None
    over_since: datetime | None = None


class Guard:
    """Per device, the quarter so far from its readings (import counter), the month's peak from
    ``capacity_quarters`` (loaded at first sight and at each new quarter)."""

    def __init__(self, pool: "asyncpg.Pool[asyncpg.Record]", price_eur_per_kw_year: float) -> None:
        self._pool = pool
        self._price = price_eur_per_kw_year
        self._devices: dict[str, _Device] = {}

    async def _month_peak(self, device_id: str, month: datetime, before: datetime) -> float | None:
        async with self._pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT max(kw) FROM capacity_quarters WHERE device_id = $1 AND bucket >= $2 AND bucket < $3",
                device_id,
                month,
                before,
            )
        return None if value is None else float(value)

    async def observe(
        self, device_id: str, reading: LatestReading, cap_kw: float | None
    ) -> QuarterNow | None:
        kwh = reading.fields.get("import_kwh")
        if not isinstance(kwh, int | float):
            return None
        ts = reading.ts
        q = quarter_of(ts)
        state = self._devices.get(device_id)
        if state is None or q != state.quarter:
            start_kwh = float(kwh)
            if state is not None and q - state.quarter == timedelta(seconds=QUARTER_S) and ts > state.last_ts:
                # interpolate the counter at the quarter's start between the two readings around it
                span = (ts - state.last_ts).total_seconds()
                part = (q - state.last_ts).total_seconds() / span if span > 0 else 0.0
                start_kwh = state.last_kwh + (float(kwh) - state.last_kwh) * part
            month = month_start(q)
            peak = await self._month_peak(device_id, month, q)
            state = _Device(q, start_kwh, ts, float(kwh), month, peak)
            self._devices[device_id] = state
        state.last_ts, state.last_kwh = ts, float(kwh)
        return self._now(state, reading, cap_kw)

    def _now(self, state: _Device, reading: LatestReading, cap_kw: float | None) -> QuarterNow:
        ts = reading.ts
        elapsed = max((ts - state.quarter).total_seconds(), 1.0)
        energy = max(state.last_kwh - state.start_kwh, 0.0)
        power = reading.fields.get("power_w")
        power_w = float(power) if isinstance(power, int | float) else 0.0
        remaining_h = max(QUARTER_S - elapsed, 0.0) / 3600
        projected = (energy + max(power_w, 0.0) / 1000 * remaining_h) * 4
        threshold = cap_kw if cap_kw is not None else max(state.month_peak_kw or 0.0, FLOOR_KW)
        if projected > threshold:
            state.over_since = state.over_since or ts
        else:
            state.over_since = None
        return QuarterNow(
            quarter_start=state.quarter,
            quarter_end=state.quarter + timedelta(seconds=QUARTER_S),
            elapsed_s=elapsed,
            energy_kwh=energy,
            kw_so_far=energy * 4,
            power_w=power_w,
            projected_kw=projected,
            month_peak_kw=state.month_peak_kw,
            threshold_kw=threshold,
            headroom_kw=threshold - projected,
            extra_cost_eur=self.extra_cost_eur(projected, state.month_peak_kw),
            as_of=ts,
        )

    def warns(self, device_id: str, q: QuarterNow) -> bool:
        state = self._devices.get(device_id)
        if state is None or state.over_since is None:
            return False
        return (q.as_of - state.over_since).total_seconds() >= SUSTAIN_S or q.kw_so_far > q.threshold_kw

    def extra_cost_eur(self, kw: float, month_peak_kw: float | None) -> float:
        counted_before = max(month_peak_kw or 0.0, FLOOR_KW)
        return round(max(kw - counted_before, 0.0) * self._price / 12, 2)
