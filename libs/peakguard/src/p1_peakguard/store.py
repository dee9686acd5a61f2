"""What ``running_quarter`` needs, read from PostgreSQL in one round trip (two when the newest reading is
not given, e.g. Redis is down): the import counter around the quarter's start (``samples``), the month's
completed quarters so far (``capacity_days`` for its whole UTC days, ``capacity_quarters`` for the
partial days at its two ends: ~30 day rows and ≤ 192 quarters, never the month's ~3,000) and the peak the
meter reported for the month (``meter_peaks``). No statement names a time zone (docs/design.md §8).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, TypeAlias
from zoneinfo import ZoneInfo

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from p1_peakguard.months import Month, month_of, utc_day_ceil, utc_day_floor
from p1_peakguard.quarter import (
    CounterPoint,
    QuarterNow,
    Reading,
    counted_peak_kw,
    counter_at,
    quarter_of,
    running_quarter,
)
from p1_schema.capacity import QUARTER_S

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
# How far back the last reading before a quarter's start is looked for: beyond it the counter is held at
# the quarter's first reading (what an hour's outage leaves unknown is counted nowhere, §6).
BEFORE_LOOKBACK: Final = timedelta(hours=1)

_NEWEST_SQL: Final = (
    "SELECT ts, import_kwh, power_w FROM samples WHERE device_id = $1 AND flag IS NULL"
    " ORDER BY ts DESC LIMIT 1"
)

# $1 device, $2 the quarter's start, $3 $2 − BEFORE_LOOKBACK, $4 the newest reading's time; the month's
# completed quarters in [$5, $6) ∪ [$9, $2) from capacity_quarters and the whole UTC days [$7, $8) from
# capacity_days; $10 the month's label.
_INPUTS_SQL: Final = """
SELECT b.ts AS b_ts, b.import_kwh AS b_kwh, b.epoch AS b_epoch,
       a.ts AS a_ts, a.import_kwh AS a_kwh, a.epoch AS a_epoch,
       q.kw AS q_kw, q.n AS q_n, d.kw AS d_kw, d.n AS d_n, m.peak_w AS meter_w
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL (SELECT ts, import_kwh, epoch FROM samples
                      WHERE device_id = $1 AND flag IS NULL AND ts < $2 AND ts >= $3
                      ORDER BY ts DESC LIMIT 1) b ON true
  LEFT JOIN LATERAL (SELECT ts, import_kwh, epoch FROM samples
                      WHERE device_id = $1 AND flag IS NULL AND ts >= $2 AND ts <= $4
                      ORDER BY ts LIMIT 1) a ON true
  CROSS JOIN (SELECT max(kw) AS kw, count(*)::int AS n FROM capacity_quarters
               WHERE device_id = $1 AND ((bucket >= $5 AND bucket < $6) OR (bucket >= $9 AND bucket < $2))) q
  CROSS JOIN (SELECT max(kws[1]) AS kw, coalesce(sum(quarters), 0)::int AS n FROM capacity_days
               WHERE device_id = $1 AND day >= $7 AND day < $8) d
  LEFT JOIN meter_peaks m ON m.device_id = $1 AND m.month = $10"""


@dataclass(frozen=True, slots=True)
class QuarterInputs:
    """What ``running_quarter`` takes but the device's cap and the price (which are the caller's)."""

    newest: Reading
    start_kwh: float
    month: Month  # the local month of the running quarter (its year chooses the price)
    month_peak_kw: float | None  # counted_peak_kw: ours, or the meter's where ours miss quarters

    def quarter(self, cap_kw: float | None, price_eur_per_kw_year: float) -> QuarterNow:
        return running_quarter(
            start_kwh=self.start_kwh,
            newest=self.newest,
            month_peak_kw=self.month_peak_kw,
            cap_kw=cap_kw,
            price_eur_per_kw_year=price_eur_per_kw_year,
        )


async def newest_reading(conn: Conn, device_id: str) -> Reading | None:
    """The newest good reading in PostgreSQL (when Redis has none)."""
    row = await conn.fetchrow(_NEWEST_SQL, device_id)
    return None if row is None else Reading(row["ts"], row["import_kwh"], row["power_w"])


def _month_ranges(month: Month, quarter_start: datetime) -> tuple[datetime, ...]:
    """[$5, $6), [$7, $8), $9 of ``_INPUTS_SQL``: the month's partial first day, its whole UTC days and
    its partial last day, up to the running quarter; without a whole day, the one range [start, quarter)."""
    day_lo, day_hi = utc_day_ceil(month.start), utc_day_floor(quarter_start)
    if day_lo >= day_hi:
        return month.start, quarter_start, month.start, month.start, quarter_start
    return month.start, day_lo, day_lo, day_hi, day_hi


async def fetch_inputs(
    conn: Conn, device_id: str, tz: ZoneInfo, newest: Reading | None = None
) -> QuarterInputs | None:
    """The inputs of the running quarter of ``newest`` (read from ``samples`` when not given; None when
    the device has no good reading). The quarter's month is the local month of ``tz``."""
    if newest is None:
        newest = await newest_reading(conn, device_id)
        if newest is None:
            return None
    start = quarter_of(newest.ts)
    month = month_of(start, tz)
    ranges = _month_ranges(month, start)
    row = await conn.fetchrow(
        _INPUTS_SQL, device_id, start, start - BEFORE_LOOKBACK, newest.ts, *ranges, month.label
    )
    assert row is not None  # one row always: every join is outer or over an aggregate
    before = None if row["b_ts"] is None else CounterPoint(row["b_ts"], row["b_kwh"], row["b_epoch"])
    after = None if row["a_ts"] is None else CounterPoint(row["a_ts"], row["a_kwh"], row["a_epoch"])
    start_kwh = counter_at(start, before, after)
    ours = [kw for kw in (row["q_kw"], row["d_kw"]) if kw is not None]
    expected = int((start - month.start).total_seconds()) // QUARTER_S
    meter = None if row["meter_w"] is None else row["meter_w"] / 1000.0
    peak = counted_peak_kw(max(ours) if ours else None, row["q_n"] + row["d_n"], expected, meter)
    return QuarterInputs(
        newest=newest,
        start_kwh=newest.import_kwh if start_kwh is None else start_kwh,
        month=month,
        month_peak_kw=peak,
    )
