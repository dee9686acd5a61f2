"""The gas and water statement: each meter's good readings per (bucket, epoch of that meter), placed by
the meter's own time (migration 0007: ``meter_volumes`` and ``rollup_volume_*``; docs/design.md §6).

As ``groups``: the range's buckets (first and last reading of each), plus per meter the last group before
the range and the first after it, which anchor the interpolation at the range's ends.
"""

from datetime import datetime
from typing import Final, NamedTuple

from p1_query.buckets import Source
from p1_query.db import Conn

METERS: Final = ("gas", "water")


class VolumeGroup(NamedTuple):
    """A rollup row's (or a raw reading's) first and last reading of one meter's epoch; times in UTC
    seconds. No bucket index: the rows are only points of the meter's curve (``series``)."""

    meter: str
    epoch: int
    first_ts: float
    first_value: float
    last_ts: float
    last_value: float


def _secs(expression: str) -> str:
    return f"date_part('epoch', {expression})"


def _volumes_sql(source: Source) -> str:
    if source == "raw":
        table, time, flag = "meter_volumes", "ts", " AND flag IS NULL"
        single = f"{_secs('ts')}, value, {_secs('ts')}, value"
    else:
        table, time, flag = f"rollup_volume_{source}", "bucket", ""
        single = f"{_secs('first_ts')}, value_min, {_secs('last_ts')}, value_max"
    where = f"FROM {table} WHERE device_id = $1 AND meter = m.meter{flag} AND {time}"
    meters = "(VALUES ('gas'), ('water')) AS m(meter)"
    return f"""
    SELECT m.meter, x.* FROM {meters} CROSS JOIN LATERAL (
        (SELECT epoch, {single} {where} < $2 ORDER BY {time} DESC, epoch DESC LIMIT 1)
        UNION ALL
        (SELECT epoch, {single} {where} >= $2 AND {time} < $3 ORDER BY {time}, epoch)
        UNION ALL
        (SELECT epoch, {single} {where} >= $3 ORDER BY {time}, epoch LIMIT 1)) x"""


VOLUMES_SQL: Final = {source: _volumes_sql(source) for source in ("raw", "15m", "1h", "1d")}


async def fetch_volumes(
    conn: Conn, device_id: str, source: Source, bounds: list[datetime]
) -> list[VolumeGroup]:
    """Gas and water groups of [bounds[0], bounds[-1]) and each meter's neighbours, by meter and time."""
    rows = await conn.fetch(VOLUMES_SQL[source], device_id, bounds[0], bounds[-1])
    return [VolumeGroup(*row) for row in rows]
