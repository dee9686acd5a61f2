"""Each local month's highest quarters: the costly part of a capacity answer.

A month whose end is at or before the device's newest reading is final (only late data can change it,
``store.DeviceVersion``), so its top quarters are kept in the response cache under the device's
late-data count. The ledger of the current month, computed again after every upload, then reads the
eleven months before it from the cache and runs the quarter-demand SQL over one month, not twelve.
"""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from p1_servicekit.errors import FieldError, Unprocessable

from . import capacity as cap
from .buckets import month_bounds
from .cache import Cached, ResponseCache, etag_of
from .store import Conn, DbTimer, DeviceVersion, top_quarters

Tops = list[tuple[float, float]]  # (UTC start seconds, kW), in time order


async def window_tops(
    conn: Conn,
    cache: ResponseCache,
    db: DbTimer,
    version: DeviceVersion,
    device_id: str,
    year: int,
    month: int,
    zone: ZoneInfo,
    tz_name: str,
    owner: str,
) -> Tops:
    """The top ``cap.TOP_QUARTERS`` quarters of each of the 12 months of ``month``'s window; what is
    stored in the cache is charged to ``owner`` (a Reader.key)."""
    months = cap.months_back(year, month, 12)
    bounds: list[tuple[datetime, datetime]] = [month_bounds(y, m, zone) for y, m in months]
    found: list[Tops | None] = []
    keys: list[str | None] = []
    for (y, m), (_, end) in zip(months, bounds, strict=True):
        tag, final = version.of_range(end)
        if not final:
            found.append(None)
            keys.append(None)
            continue
        look = await cache.lookup(device_id, tag, "capacity-month", f"{y:04d}-{m:02d}|{tz_name}", True)
        keys.append(look.key)
        found.append(None if look.hit is None else _tops(look.hit.body))
    missing = [i for i, tops in enumerate(found) if tops is None]
    if missing:
        first, last = missing[0], missing[-1]
        computed = await _top_quarters(conn, db, device_id, bounds[first][0], bounds[last][1], zone)
        for i in range(first, last + 1):
            lo, hi = bounds[i][0].timestamp(), bounds[i][1].timestamp()
            mine = [t for t in computed if lo <= t[0] < hi]
            if found[i] is None:
                found[i] = mine
                key = keys[i]
                if key is not None:
                    body = json.dumps(mine).encode()
                    await cache.store(key, Cached(etag_of(body), body), True, owner)
    return [t for tops in found if tops is not None for t in tops]


def _tops(body: bytes) -> Tops | None:
    """A cached month's tops as ``window_tops`` writes them, or None (computed again) for anything else."""
    try:
        tops = [(float(s), float(kw)) for s, kw in json.loads(body)]
    except (ValueError, TypeError, RecursionError):
        return None
    return tops


async def _top_quarters(
    conn: Conn, db: DbTimer, device_id: str, start: datetime, end: datetime, zone: ZoneInfo
) -> Tops:
    try:
        async with db.time("capacity"):
            return await top_quarters(conn, device_id, start, end, zone.key, cap.TOP_QUARTERS)
    except asyncpg.InvalidParameterValueError as exc:
        # A zone of Python's time zone data that PostgreSQL's (older) data does not have yet.
        if "time zone" not in str(exc):
            raise
        msg = f"time zone '{zone.key}' is unknown to the database's time zone data; use an older name"
        raise Unprocessable([FieldError(("query", "tz"), msg, "tz_unknown_to_database")]) from None
