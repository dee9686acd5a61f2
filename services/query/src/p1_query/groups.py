"""The series statement: reading groups per (bucket, counter epoch) from raw ``samples`` or a rollup.

``rollup_15m`` / ``rollup_1h`` hold a row per (device, UTC bucket, counter epoch) with the first and last
reading's time and counter values; ``rollup_1d`` the same per local day of the zone in ``rollup_1d_zone``
(docs/design.md §4 has the data model). ``Group`` and the statement are one declaration: each field after
``i`` and ``epoch`` names its expression for each source in ``GROUP_COLUMNS``, and the statement selects them
in the field order, so ``fetch_groups`` can build groups by position.
"""

import time
from dataclasses import dataclass, fields
from datetime import datetime
from operator import le
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from p1_query.buckets import Source
from p1_query.db import Conn


@dataclass(slots=True)
class Group:
    """Readings of one counter epoch within one bucket (index ``i``; −1 and N are the neighbours
    just outside the range, kept only as interpolation anchors). Times in UTC seconds. Gas and water are
    the meters' own readings, placed by their own time: ``volumes``."""

    i: int
    epoch: int
    n: int
    power_sum: float | None
    power_min: float | None
    power_max: float | None
    first_ts: float
    last_ts: float
    import_first: float | None
    import_last: float | None
    export_first: float | None
    export_last: float | None
    import_t1_first: float | None
    import_t1_last: float | None
    import_t2_first: float | None
    import_t2_last: float | None
    export_t1_first: float | None
    export_t1_last: float | None
    export_t2_first: float | None
    export_t2_last: float | None


class Column(NamedTuple):
    """How one Group field is read: from a bucket's rollup rows merged, from one rollup row (a
    neighbour), from a bucket's raw readings, from one raw reading."""

    rollup_agg: str
    rollup_row: str
    raw_agg: str
    raw_row: str


def _seconds(expression: str) -> str:
    # Times travel as UTC seconds: decoding a timestamp and converting it back cost as much as the rest
    # of a month of quarters. date_part, not extract: extract computes in numeric (PostgreSQL ≥ 14),
    # several times slower over thousands of rows.
    return f"date_part('epoch', {expression})"


# The meters' counters: rollups keep each one's smallest and largest value (``{counter}_min/_max``);
# within an epoch the first reading has the smallest and the last the largest. The tariff registers 1
# and 2 (migration 0007) follow the totals' rules: the day/night split of ``import``/``export``.
COUNTERS: Final = {
    "import": "import_kwh",
    "export": "export_kwh",
    "import_t1": "import_t1_kwh",
    "import_t2": "import_t2_kwh",
    "export_t1": "export_t1_kwh",
    "export_t2": "export_t2_kwh",
}

# Merging whole rollup rows into a bigger bucket is exact: sums add, minima/maxima merge. Series use
# neither the meter's quarter average nor its month peak (capacity reads rollup_15m rows as they are).
GROUP_COLUMNS: Final[dict[str, Column]] = {
    "n": Column("sum(n)::int", "n", "count(*)::int", "1"),
    "power_sum": Column("sum(power_sum)", "power_sum", "sum(power_w)", "power_w"),
    "power_min": Column("min(power_min)", "power_min", "min(power_w)", "power_w"),
    "power_max": Column("max(power_max)", "power_max", "max(power_w)", "power_w"),
    "first_ts": Column(_seconds("min(first_ts)"), _seconds("first_ts"), _seconds("min(ts)"), _seconds("ts")),
    "last_ts": Column(_seconds("max(last_ts)"), _seconds("last_ts"), _seconds("max(ts)"), _seconds("ts")),
    **{
        f"{counter}_{end}": Column(f"{agg}({column}_{ext})", f"{column}_{ext}", f"{agg}({column})", column)
        for counter, column in COUNTERS.items()
        for end, agg, ext in (("first", "min", "min"), ("last", "max", "max"))
    },
}
# Group's fields after i and epoch, in order: the statement's columns after those two.
GROUP_VALUES: Final = tuple(f.name for f in fields(Group))[2:]


def _select(part: str) -> str:
    """The value columns of one part of the statement (a ``Column`` attribute), in Group's order."""
    return ", ".join(f"{getattr(GROUP_COLUMNS[name], part)} AS {name}" for name in GROUP_VALUES)


def _groups_sql(source: str) -> str:
    if source == "raw":
        table, time_column, merged, single = "samples", "ts", _select("raw_agg"), _select("raw_row")
    else:
        table, time_column = f"rollup_{source}", "bucket"
        merged, single = _select("rollup_agg"), _select("rollup_row")
    # One round trip: the range's buckets (width_bucket maps a time to its bucket by binary search
    # over the boundaries), plus the last reading group before and the first after the range, which
    # anchor the interpolation at the range's own ends.
    # Raw readings flagged by ingest's integrity check (suspect, glitch) count nowhere; rollups never
    # hold them.
    good = " AND flag IS NULL" if source == "raw" else ""
    where = f"FROM {table} WHERE device_id = $1 AND {time_column}"
    return f"""
    (SELECT width_bucket({time_column}, $2::timestamptz[]) - 1 AS i, epoch, {merged}
       {where} >= $3 AND {time_column} < $4{good}
      GROUP BY 1, 2)
    UNION ALL
    (SELECT -1 AS i, epoch, {single} {where} < $3{good}
      ORDER BY {time_column} DESC, epoch DESC LIMIT 1)
    UNION ALL
    (SELECT $5::int AS i, epoch, {single} {where} >= $4{good}
      ORDER BY {time_column}, epoch LIMIT 1)
    ORDER BY i, epoch"""


GROUPS_SQL: Final = {source: _groups_sql(source) for source in ("raw", "15m", "1h", "1d")}

# The rollups' grid widths (s): buckets of exactly that width are the rollup's own rows.
_WIDTH: Final = {"15m": 900, "1h": 3600}


def _dense_sql(source: str) -> str:
    """When each bucket is exactly one row per epoch of the rollup (a month by quarter from rollup_15m):
    no merging, and the bucket index by arithmetic ($2 the first bound, $5 the width, in seconds) — no
    boundaries array to send (encoding ~3,000 timestamps cost more than the statement), no GROUP BY,
    no final sort: the parts come in order (``fetch_group_columns`` checks it, and sorts if ever not)."""
    table, single = f"rollup_{source}", _select("rollup_row")
    where = f"FROM {table} WHERE device_id = $1 AND bucket"
    return f"""
    (SELECT -1 AS i, epoch, {single} {where} < $3 ORDER BY bucket DESC, epoch DESC LIMIT 1)
    UNION ALL
    (SELECT round((date_part('epoch', bucket) - $2) / $5)::int AS i, epoch, {single}
       {where} >= $3 AND bucket < $4 ORDER BY bucket, epoch)
    UNION ALL
    (SELECT $6::int AS i, epoch, {single} {where} >= $4 ORDER BY bucket, epoch LIMIT 1)"""


DENSE_SQL: Final = {source: _dense_sql(source) for source in _WIDTH}


def _dense(source: Source, bounds: list[datetime]) -> bool:
    """Bounds on the source's grid (``buckets.source_for``) are ≥ one width apart, so they are all exactly
    one apart iff the whole span is (len − 1) widths."""
    width = _WIDTH.get(source)
    return width is not None and (bounds[-1] - bounds[0]).total_seconds() == width * (len(bounds) - 1)


# Each statement's rows as one row of arrays, a column each: asyncpg decodes an array in C, where a
# record of 20 values costs Python objects and a transposition (3× the client's CPU for a month of
# quarters). The subquery's order is the aggregate's; ``_in_order`` checks it.
_NAMES: Final = ("i", "epoch", *GROUP_VALUES)


def _as_columns(statement: str) -> str:
    return "SELECT " + ", ".join(f"array_agg({n}) AS {n}" for n in _NAMES) + f" FROM ({statement}) g"


GROUPS_COLUMNS_SQL: Final = {source: _as_columns(sql) for source, sql in GROUPS_SQL.items()}
DENSE_COLUMNS_SQL: Final = {source: _as_columns(sql) for source, sql in DENSE_SQL.items()}
GroupColumns = dict[str, list[Any]]


def _in_order(cols: GroupColumns) -> GroupColumns:
    """The columns by (bucket index, epoch), which the statements produce; sorted here if ever not."""
    keys = list(zip(cols["i"], cols["epoch"], strict=True))
    if all(map(le, keys, keys[1:])):
        return cols
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return {name: [column[k] for k in order] for name, column in cols.items()}


async def fetch_group_columns(
    conn: Conn, device_id: str, source: Source, bounds: list[datetime]
) -> GroupColumns:
    """Groups per (bucket index, epoch) of the buckets delimited by ``bounds``, ordered by time, as
    columns named as ``Group``'s fields."""
    size = len(bounds) - 1
    if _dense(source, bounds):
        first, width = bounds[0].timestamp(), float(_WIDTH[source])
        sql, args = DENSE_COLUMNS_SQL[source], [first, bounds[0], bounds[-1], width, size]
    else:
        sql, args = GROUPS_COLUMNS_SQL[source], [bounds, bounds[0], bounds[-1], size]
    row = await conn.fetchrow(sql, device_id, *args)
    assert row is not None
    return _in_order({name: row[name] or [] for name in _NAMES})


async def fetch_groups(conn: Conn, device_id: str, source: Source, bounds: list[datetime]) -> list[Group]:
    """The same as ``Group`` objects."""
    cols = await fetch_group_columns(conn, device_id, source, bounds)
    return [Group(*values) for values in zip(*cols.values(), strict=True)]


class DailyZone:
    """The zone whose local days ``rollup_1d`` holds (migration 0002), read on first use — the database
    may be down when the service starts — and then kept: only a migration that rebuilds rollup_1d can
    change it, and that requires restarting the query service. A schema without it (migration 0002 not
    applied yet) is asked again after ``retry_s``; meanwhile days come from rollup_1h, as exact."""

    def __init__(self, retry_s: float = 60.0) -> None:
        self._zone: ZoneInfo | None = None
        self._retry_at = 0.0
        self._retry_s = retry_s

    async def get(self, conn: Conn) -> ZoneInfo | None:
        if self._zone is not None or time.monotonic() < self._retry_at:
            return self._zone
        name = None
        if await conn.fetchval("SELECT to_regclass('rollup_1d_zone')") is not None:
            name = await conn.fetchval("SELECT tz FROM rollup_1d_zone")
        if name is None:
            self._retry_at = time.monotonic() + self._retry_s
            return None
        self._zone = ZoneInfo(str(name))
        return self._zone
