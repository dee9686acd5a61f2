"""Each local month's highest quarters: the costly part of a capacity answer.

A month whose end is at or before the device's newest reading is final (only late data can change it,
``cachekeys.DeviceVersion``), so its top quarters are kept in the response cache under the device's
late-data count. The ledger of the current month, computed again after every upload, then reads the
eleven months before it from the cache and runs the quarter-demand SQL over one month, not twelve.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from p1_query.buckets import month_bounds
from p1_query.cache import Cached, ResponseCache, etag_of
from p1_query.cachekeys import DeviceVersion, month_tops_params
from p1_query.capacity import TOP_QUARTERS, WINDOW_MONTHS, Demand, months_back
from p1_query.capacity_sql import top_quarters
from p1_query.db import Conn, DbTimer

Tops = list[Demand]  # in time order


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

    async def of_window(self, year: int, month: int, zone: ZoneInfo, tz_name: str) -> Tops:
        """The top ``TOP_QUARTERS`` quarters of each of the 12 months of ``month``'s window."""
        months = months_back(year, month, WINDOW_MONTHS)
        bounds = [month_bounds(*year_month, zone) for year_month in months]
        keys: list[str | None] = []
        found: list[Tops | None] = []
        for year_month, (_, end) in zip(months, bounds, strict=True):
            key, tops = await self._cached(*year_month, end, tz_name)
            keys.append(key)
            found.append(tops)
        missing = [i for i, tops in enumerate(found) if tops is None]
        if missing:
            first, last = missing[0], missing[-1]
            edges = [start for start, _ in bounds[first : last + 1]] + [bounds[last][1]]
            async with self.db.time("capacity"):
                computed = await top_quarters(self.conn, self.device_id, edges, TOP_QUARTERS)
            for i in range(first, last + 1):
                if found[i] is None:
                    found[i] = await self._keep(keys[i], computed, bounds[i])
        return [demand for tops in found if tops is not None for demand in tops]

    async def _cached(
        self, year: int, month: int, end: datetime, tz_name: str
    ) -> tuple[str | None, Tops | None]:
        """(cache key, the month's tops when cached); no key for a month that is not final."""
        tag, final = self.version.of_range(end)
        if not final:
            return None, None
        params = month_tops_params(year, month, tz_name)
        look = await self.cache.lookup(self.device_id, tag, "capacity-month", params, True)
        return look.key, None if look.hit is None else _tops(look.hit.body)

    async def _keep(self, key: str | None, computed: Tops, bounds: tuple[datetime, datetime]) -> Tops:
        """The month's share of ``computed``, stored under ``key`` when the month is final."""
        low, high = bounds[0].timestamp(), bounds[1].timestamp()
        mine = [demand for demand in computed if low <= demand[0] < high]
        if key is not None:
            body = json.dumps(mine).encode()
            await self.cache.store(key, Cached(etag_of(body), body), True, self.owner)
        return mine


def _tops(body: bytes) -> Tops | None:
    """A cached month's tops as ``MonthTops`` writes them, or None (computed again) for anything else."""
    try:
        return [(float(start), float(kw)) for start, kw in json.loads(body)]
    except (ValueError, TypeError, RecursionError):
        return None
