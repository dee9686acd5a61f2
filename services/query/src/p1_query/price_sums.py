"""Dynamic price sums per (bucket, segment), from settled hours where they are valid (migration 0012).

A range whose bounds and plan changes all lie on whole UTC hours (every zone of whole-hour offsets) is
summed on the hour grid: each hour from its settled day's row while that row is valid, every other
hour from its quarters exactly as the row was made (``costs_sql.quarter_prefix``, run over each
stretch of hours without a valid row: usually just today). Anything else — a zone of half- or
quarter-hour offsets, an unsettled history cut into many pieces — goes to the quarters throughout
(``costs_sql.quarter_sums``). Both ways give the same sums; only the order of the float additions
differs (far below the 6 decimals answers carry).
"""

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from p1_query.costs_sql import (
    QUARTER_S,
    BucketSums,
    PrefixSums,
    bucket_grid,
    by_bucket,
    quarter_prefix,
    quarter_sums,
    reading_span,
)
from p1_query.db import Conn

HOUR_S: Final = 3600
DAY_S: Final = 86400
HOURS: Final = 24
SUMS: Final = ("market", "priced", "unpriced")
# Beyond this many stretches of unsettled hours in one range, one pass over the quarters is cheaper.
MAX_STRETCHES: Final = 4

# A row is valid while the device's late_writes is the one it was made under and no price change
# newer than its prices_revision touches its day (migration 0012).
VALID_SQL: Final = """
   s.late_writes = (SELECT late_writes FROM devices WHERE device_id = s.device_id)
   AND NOT EXISTS (SELECT 1 FROM price_changes c
                    WHERE c.revision > s.prices_revision
                      AND c.first_start < s.day + interval '24 hours' AND c.last_end > s.day)"""


def _settled_sql(directions: tuple[str, ...]) -> str:
    columns = ", ".join(f"s.{d}_{name}" for d in directions for name in SUMS)
    return f"""
SELECT date_part('epoch', s.day) AS day, {columns} FROM price_sums s
 WHERE s.device_id = $1 AND s.day >= $2 AND s.day < $3 AND {VALID_SQL}
 ORDER BY s.day"""


SETTLED_SQL: Final[dict[tuple[str, ...], str]] = {
    d: _settled_sql(d) for d in (("import",), ("export",), ("import", "export"))
}


def _day_start(t: float) -> float:
    return t - t % DAY_S


async def dynamic_sums(
    conn: Conn,
    device_id: str,
    bounds: list[datetime],
    segment_starts: list[datetime],
    directions: tuple[str, ...],
) -> BucketSums:
    """(import, export) sums per (bucket index, segment index) of [bounds[0], bounds[-1]), as
    ``costs_sql.quarter_sums``, from settled hours where it can."""
    first, last = bounds[0].timestamp(), bounds[-1].timestamp()
    grid = bucket_grid(bounds, segment_starts, HOUR_S)
    if first % HOUR_S or grid is None:  # settled rows hold whole UTC hours
        return await quarter_sums(conn, device_id, bounds, segment_starts, directions)
    edges, cuts = grid
    span = await reading_span(conn, device_id, first, last, HOUR_S)
    if span is None:
        return by_bucket(dict.fromkeys(directions, PrefixSums.zero()), edges, cuts)
    origin, hours = first + span[0] * HOUR_S, span[1] - span[0]  # the hours that hold readings
    values = await _settled(conn, device_id, origin, origin + hours * HOUR_S, hours, directions)
    stretches = _unsettled(values[directions[0]][0], hours)
    if len(stretches) > MAX_STRETCHES:
        return await quarter_sums(conn, device_id, bounds, segment_starts, directions)
    for a, b in stretches:
        start = datetime.fromtimestamp(origin + a * HOUR_S, UTC)
        live = await quarter_prefix(conn, device_id, start, start + timedelta(hours=b - a), directions)
        for direction in directions:
            for column, hourly in zip(
                values[direction], live[direction].per(HOUR_S // QUARTER_S), strict=True
            ):
                column[a:b] = hourly
    sums = {d: PrefixSums.of(values[d][0], values[d][1], values[d][2], span[0]) for d in directions}
    return by_bucket(sums, edges, cuts)


async def _settled(
    conn: Conn, device_id: str, first: float, last: float, hours: int, directions: tuple[str, ...]
) -> dict[str, list[list[Any]]]:
    """Per direction, the (market, priced, unpriced) value of each hour of [first, last) from valid
    settled rows; None where there is none."""
    values = {d: [[None] * hours for _ in SUMS] for d in directions}
    lo, hi = datetime.fromtimestamp(_day_start(first), UTC), datetime.fromtimestamp(last, UTC)
    for row in await conn.fetch(SETTLED_SQL[directions], device_id, lo, hi):
        at = int(row["day"] - first) // HOUR_S  # the row's hour 0 on the range's grid (< 0: before it)
        skip, take = max(0, -at), min(HOURS, hours - at)
        if take <= skip:
            continue
        for direction in directions:
            for column, name in zip(values[direction], SUMS, strict=True):
                column[at + skip : at + take] = row[f"{direction}_{name}"][skip:take]
    return values


def _unsettled(column: list[Any], hours: int) -> list[tuple[int, int]]:
    """The stretches [a, b) of hours without a settled value (settled ones skipped by a C-level search)."""
    out: list[tuple[int, int]] = []
    k = 0
    while k < hours:
        try:
            a = column.index(None, k)
        except ValueError:
            break
        k = a
        while k < hours and column[k] is None:
            k += 1
        out.append((a, k))
    return out
