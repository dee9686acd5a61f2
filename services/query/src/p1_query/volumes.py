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
    meter: str
    i: int
    epoch: int
    first_ts: float
    first_value: float
    last_ts: float
    last_value: float


def _secs(expression: str) -> str:
    return f"extract(epoch FROM {expression})::float8"


def _volumes_sql(source: Source) -> str:
    if source == "raw":
        table, time, flag = "meter_volumes", "ts", " AND flag IS NULL"
        merged = f"{_secs('min(ts)')}, min(value), {_secs('max(ts)')}, max(value)"
        single = f"{_secs('ts')}, value, {_secs('ts')}, value"
    else:
        table, time, flag = f"rollup_volume_{source}", "bucket", ""
        merged = f"{_secs('min(first_ts)')}, min(value_min), {_secs('max(last_ts)')}, max(value_max)"
        single = f"{_secs('first_ts')}, value_min, {_secs('last_ts')}, value_max"
    where = f"FROM {table} WHERE device_id = $1 AND meter = m.meter{flag} AND {time}"
    meters = "(VALUES ('gas'), ('water')) AS m(meter)"
    return f"""
    (SELECT m.meter, width_bucket({time}, $2::timestamptz[]) - 1 AS i, epoch, {merged}
       FROM {meters} CROSS JOIN {table}
      WHERE {table}.device_id = $1 AND {table}.meter = m.meter{flag} AND {time} >= $3 AND {time} < $4
      GROUP BY 1, 2, 3)
    UNION ALL
    (SELECT m.meter, -1, x.* FROM {meters} CROSS JOIN LATERAL (
        SELECT epoch, {single} {where} < $3 ORDER BY {time} DESC, epoch DESC LIMIT 1) x)
    UNION ALL
    (SELECT m.meter, $5::int, x.* FROM {meters} CROSS JOIN LATERAL (
        SELECT epoch, {single} {where} >= $4 ORDER BY {time}, epoch LIMIT 1) x)
    ORDER BY 1, 2, 3"""


VOLUMES_SQL: Final = {source: _volumes_sql(source) for source in ("raw", "15m", "1h", "1d")}


async def fetch_volumes(
    conn: Conn, device_id: str, source: Source, bounds: list[datetime]
) -> list[VolumeGroup]:
    """Gas and water groups of the buckets delimited by ``bounds``, by meter and time."""
    rows = await conn.fetch(VOLUMES_SQL[source], device_id, bounds, bounds[0], bounds[-1], len(bounds) - 1)
    return [VolumeGroup(*row) for row in rows]
