"""Each local month's highest quarters and count of completed quarters: the costly part of a capacity
answer.

A month whose end is at or before the device's newest reading is final (only late data can change it,
``cachekeys.DeviceVersion``), so its tops are kept in the response cache under the device's late-data
count. The ledger of the current month, computed again after every upload, then reads the eleven months
before it from the cache and asks the database for one month, not twelve.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from p1_peakguard.quarter import WINDOW_MONTHS
from p1_query.buckets import month_bounds
from p1_query.cache import Cached, ResponseCache, etag_of
from p1_query.cachekeys import DeviceVersion, month_tops_params
from p1_query.capacity import TOP_QUARTERS, Demand, months_back
from p1_query.capacity_sql import month_quarters
from p1_query.db import Conn, DbTimer

Tops = list[Demand]  # in time order


@dataclass(frozen=True, slots=True)
class Month:
    """A month's top quarters (time order) and how many completed quarters it has."""

    tops: Tops
    quarters: int


@dataclass(frozen=True, slots=True)
class Window:
    """The 12 months of a ledger's window, oldest first."""

    months: list[Month]

    def demands(self) -> Tops:
        return [demand for month in self.months for demand in month.tops]


@dataclass(frozen=True)
class MonthTops:
    """Where the top quarters come from; what is stored in the cache is charged to ``owner`` (a
    Reader.key)."""

    conn: Conn
    cache: ResponseCache
    db: DbTimer
    version: DeviceVersion
    device_id: str
    owner: str

    async def of_window(self, year: int, month: int, zone: ZoneInfo, tz_name: str) -> Window:
        """The top ``TOP_QUARTERS`` quarters and quarter count of each month of ``month``'s window."""
        months = months_back(year, month, WINDOW_MONTHS)
        bounds = [month_bounds(*year_month, zone) for year_month in months]
        keys: list[str | None] = []
        found: list[Month | None] = []
        for year_month, (_, end) in zip(months, bounds, strict=True):
            key, cached = await self._cached(*year_month, end, tz_name)
            keys.append(key)
            found.append(cached)
        missing = [i for i, cached in enumerate(found) if cached is None]
        if missing:
            first, last = missing[0], missing[-1]
            edges = [start for start, _ in bounds[first : last + 1]] + [bounds[last][1]]
            async with self.db.time("capacity"):
                tops, counts = await month_quarters(self.conn, self.device_id, edges, TOP_QUARTERS)
            for i in range(first, last + 1):
                if found[i] is None:
                    found[i] = await self._keep(keys[i], tops, counts[i - first], bounds[i])
        return Window([m for m in found if m is not None])

    async def _cached(
        self, year: int, month: int, end: datetime, tz_name: str
    ) -> tuple[str | None, Month | None]:
        """(cache key, the month when cached); no key for a month that is not final."""
        tag, final = self.version.of_range(end)
        if not final:
            return None, None
        params = month_tops_params(year, month, tz_name)
        look = await self.cache.lookup(self.device_id, tag, "capacity-month", params, True)
        return look.key, None if look.hit is None else _month(look.hit.body)

    async def _keep(
        self, key: str | None, computed: Tops, quarters: int, bounds: tuple[datetime, datetime]
    ) -> Month:
        """The month's share of ``computed``, stored under ``key`` when the month is final."""
        low, high = bounds[0].timestamp(), bounds[1].timestamp()
        mine = Month([demand for demand in computed if low <= demand[0] < high], quarters)
        if key is not None:
            body = json.dumps({"tops": mine.tops, "quarters": quarters}).encode()
            await self.cache.store(key, Cached(etag_of(body), body), True, self.owner)
        return mine


def _month(body: bytes) -> Month | None:
    """A cached month as ``MonthTops`` writes it, or None (computed again) for anything else."""
    try:
        value = json.loads(body)
        return Month([(float(start), float(kw)) for start, kw in value["tops"]], int(value["quarters"]))
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
