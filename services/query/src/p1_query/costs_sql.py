"""Dynamic prices: each quarter-hour's energy × the market price of its interval, summed per bucket.

Each quarter's energy is the series' own (docs/design.md §6): the counter interpolated at the quarter's
bounds, epoch by epoch (``series.counter_energies_at``), from ``rollup_15m``'s first and last readings
of each quarter (one lean statement, arrays decoded in C). Market prices arrive as arrays too; a price
interval covers the quarters it spans (an hourly price its four), so energy is interpolated within it.
Products and sums run as C-level maps and prefix sums over the quarters: a year of quarter-hour prices
(~35,000) is a few list operations, with no per-quarter Python loop. A quarter whose price is missing,
or not on the quarter grid, is unpriced: never a guess.
"""

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import accumulate, repeat
from operator import add, mul, sub
from typing import Any, Final

from p1_query.db import Conn
from p1_query.groups import COUNTERS, GROUP_COLUMNS
from p1_query.series import counter_energies_at

QUARTER_S: Final = 900
_WHERE: Final = "FROM rollup_15m WHERE device_id = $1 AND bucket"
_TIMES: Final = ("first_ts", "last_ts")


def _lean(directions: tuple[str, ...]) -> tuple[str, ...]:
    """The readings the quarter energies of ``directions`` need: times, and the counters' first and last."""
    return (*_TIMES, *(f"{d}_{end}" for d in directions for end in ("first", "last")))


def _quarters_sql(directions: tuple[str, ...]) -> str:
    """The range's quarters by index ($2 the first bound in seconds), and the quarter before and after it
    (indexes −1 and $5), which anchor the interpolation at the range's ends: as ``groups.DENSE_SQL``,
    with only the columns ``directions`` need, as one row of arrays."""
    lean = _lean(directions)
    row = ", ".join(f"{GROUP_COLUMNS[name].rollup_row} AS {name}" for name in lean)
    arrays = ", ".join(f"array_agg({n}) AS {n}" for n in ("i", "epoch", *lean))
    return f"""
SELECT {arrays} FROM (
    (SELECT -1 AS i, epoch, {row} {_WHERE} < $3 ORDER BY bucket DESC, epoch DESC LIMIT 1)
    UNION ALL
    (SELECT round((date_part('epoch', bucket) - $2) / {QUARTER_S})::int AS i, epoch, {row}
       {_WHERE} >= $3 AND bucket < $4 ORDER BY bucket, epoch)
    UNION ALL
    (SELECT $5::int AS i, epoch, {row} {_WHERE} >= $4 ORDER BY bucket, epoch LIMIT 1)) g"""


_PRICES_WHERE: Final = """FROM energy_prices
 WHERE start >= $1::timestamptz - interval '1 day' AND start < $2 AND "end" > $1"""


def _prices_sql(directions: tuple[str, ...]) -> str:
    """The market prices of ``directions`` in time order, from prices starting up to a day before the
    range (a price spans at most a day, migration 0010), and whether they are consecutive quarter-hours
    (the usual market file): then they travel as the first start and the prices alone. The test is on
    aggregates and interval arithmetic, not on each row's epoch: a year of prices is ~35,000 rows, and
    the start and end arrays are not built (an aggregate runs even when a CASE does not send it)."""
    prices = ", ".join(f"array_agg({d}_eur_per_kwh::float8 ORDER BY start) AS {d}" for d in directions)
    return f"""
SELECT date_part('epoch', min(start)) AS a0,
       coalesce(bool_and("end" - start = interval '{QUARTER_S} seconds')
                AND date_part('epoch', max(start)) - date_part('epoch', min(start))
                    = {QUARTER_S} * (count(*) - 1), false) AS consecutive, {prices}
  {_PRICES_WHERE}"""


def _spread_sql(directions: tuple[str, ...]) -> str:
    """``_prices_sql``'s prices with each one's start and end (UTC seconds): read only when they are not
    consecutive quarter-hours (hourly prices, a gap)."""
    values = ", ".join(f"{d}_eur_per_kwh::float8 AS {d}" for d in directions)
    prices = ", ".join(f"array_agg({d}) AS {d}" for d in directions)
    return f"""
SELECT min(a) AS a0, false AS consecutive, array_agg(a) AS a, array_agg(b) AS b, {prices} FROM (
    SELECT date_part('epoch', start) AS a, date_part('epoch', "end") AS b, {values}
      {_PRICES_WHERE}
     ORDER BY start) p"""


_ASKED: Final = (("import",), ("export",), ("import", "export"))
QUARTERS_SQL: Final[dict[tuple[str, ...], str]] = {d: _quarters_sql(d) for d in _ASKED}
PRICES_SQL: Final[dict[tuple[str, ...], str]] = {d: _prices_sql(d) for d in _ASKED}
SPREAD_SQL: Final[dict[tuple[str, ...], str]] = {d: _spread_sql(d) for d in _ASKED}


@dataclass(frozen=True, slots=True)
class Direction:
    """One direction's quarters in a (bucket, segment): Σ energy × market price, the energy that had a
    price, and the energy that had none (kWh)."""

    market: float
    priced: float
    unpriced: float


# (import, export) sums per (bucket index, segment index); None for a direction not asked for.
BucketSums = dict[tuple[int, int], tuple[Direction | None, Direction | None]]


@dataclass(frozen=True, slots=True)
class PrefixSums:
    """Prefix sums of one direction over a grid (quarters, or hours): P[k] = Σ of the units before k.
    They may cover only part of the caller's grid, from its unit ``shift`` on: every unit outside is
    zero (no readings there), so no list is as long as a century of quarters."""

    market: list[float]
    priced: list[float]
    unpriced: list[float]
    shift: int = 0

    @classmethod
    def of(
        cls, market: list[float], priced: list[float], unpriced: list[float], shift: int = 0
    ) -> "PrefixSums":
        """The prefix sums of per-unit values."""

        def prefix(values: list[float]) -> list[float]:
            return list(accumulate(values, add, initial=0.0))

        return cls(prefix(market), prefix(priced), prefix(unpriced), shift)

    def per(self, every: int) -> tuple[list[float], list[float], list[float]]:
        """The per-unit values of a grid ``every`` times coarser (an hour: every 4 quarters)."""
        ends = range(every, len(self.market), every)
        return tuple(  # type: ignore[return-value]
            [p[k] - p[k - every] for k in ends] for p in (self.market, self.priced, self.unpriced)
        )

    def between(self, a: int, b: int) -> Direction:
        """The sums of units [a, b) of the caller's grid."""
        top = len(self.market) - 1
        a, b = min(max(a - self.shift, 0), top), min(max(b - self.shift, 0), top)
        return Direction(
            self.market[b] - self.market[a],
            self.priced[b] - self.priced[a],
            self.unpriced[b] - self.unpriced[a],
        )

    @classmethod
    def zero(cls) -> "PrefixSums":
        """Nothing anywhere: a range without readings."""
        return cls([0.0], [0.0], [0.0])


def quarter_prices(rows: Any, column: str, first: float, count: int) -> list[float | None]:
    """Each quarter's price of ``column`` (None: no price covers it, or not on the quarter grid), from a
    row of ``PRICES_SQL`` when consecutive, else of ``SPREAD_SQL``."""
    prices = rows[column] or []
    if rows["consecutive"]:  # a slice, no lookup
        k0, off = divmod(rows["a0"] - first, QUARTER_S)
        if off:
            return [None] * count
        k = int(k0)
        head = prices[max(0, -k) : max(0, -k) + count - max(0, k)]
        out: list[float | None] = [None] * max(0, k) + head
        return out + [None] * (count - len(out))
    by_start: dict[float, float | None] = {}
    for a, b, price in zip(rows["a"] or [], rows["b"] or [], prices, strict=True):
        if b - a == QUARTER_S:
            by_start[a] = price
        else:  # an hourly (or longer) price covers each of its quarters
            by_start.update(zip(range(int(a), int(b), QUARTER_S), repeat(price)))
    return list(map(by_start.get, accumulate(repeat(float(QUARTER_S), count - 1), add, initial=first)))


def _prefix(energy: list[float], prices: list[float | None]) -> PrefixSums:
    if None not in prices:  # every quarter priced: no masks
        market = list(accumulate(map(mul, energy, prices), add, initial=0.0))
        return PrefixSums(market, list(accumulate(energy, add, initial=0.0)), [0.0] * (len(energy) + 1))
    has = [0.0 if p is None else 1.0 for p in prices]
    zeroed = [0.0 if p is None else p for p in prices]
    priced = list(map(mul, energy, has))
    return PrefixSums(
        list(accumulate(map(mul, energy, zeroed), add, initial=0.0)),
        list(accumulate(priced, add, initial=0.0)),
        list(accumulate(map(sub, energy, priced), add, initial=0.0)),
    )


async def quarter_prefix(
    conn: Conn, device_id: str, start: datetime, end: datetime, directions: tuple[str, ...]
) -> dict[str, PrefixSums]:
    """Prefix sums over the quarters of [start, end) (both on the quarter grid) of each direction."""
    first = start.timestamp()
    count, rest = divmod(int(end.timestamp() - first), QUARTER_S)
    assert not rest
    row = await conn.fetchrow(QUARTERS_SQL[directions], device_id, first, start, end, count)
    prices = await conn.fetchrow(PRICES_SQL[directions], start, end)
    assert prices is not None
    if not prices["consecutive"]:  # hourly prices, or a gap: their starts and ends as well
        prices = await conn.fetchrow(SPREAD_SQL[directions], start, end)
    assert row is not None
    assert prices is not None
    cols: dict[str, Sequence[Any]] = {name: row[name] or [] for name in ("i", "epoch", *_lean(directions))}
    for counter in COUNTERS:  # the registers, and a direction not asked for: not read
        cols.setdefault(f"{counter}_first", [None] * len(cols["i"]))
        cols.setdefault(f"{counter}_last", [None] * len(cols["i"]))
    stamps = list(accumulate(repeat(float(QUARTER_S), count), add, initial=first))
    energy = counter_energies_at(cols, stamps) if cols["i"] else {}
    sums: dict[str, PrefixSums] = {}
    for direction in directions:
        quarters = energy.get(direction) or [0.0] * count
        sums[direction] = _prefix(quarters, quarter_prices(prices, direction, first, count))
    return sums


# Where the device's quarters with readings lie: outside, every energy and sum is zero.
SPAN_SQL: Final = """
SELECT date_part('epoch', min(bucket)) AS a, date_part('epoch', max(bucket)) + 900 AS b
  FROM rollup_15m WHERE device_id = $1"""


async def reading_span(
    conn: Conn, device_id: str, first: float, last: float, step: int
) -> tuple[int, int] | None:
    """The units [a, b) of the grid of ``step`` seconds from ``first`` up to ``last`` that hold the
    device's readings (widened to whole units); None when none does."""
    row = await conn.fetchrow(SPAN_SQL, device_id)
    if row is None or row["a"] is None:
        return None
    units = int(last - first) // step
    a = max(0, int((row["a"] - first) // step))
    b = min(units, -int(-(row["b"] - first) // step))
    return (a, b) if a < b else None


def grid_indexes(times: Sequence[float], first: float, step: float) -> list[int] | None:
    """Each time's index on the grid of ``step`` seconds from ``first``; None when one is off it."""
    out = []
    for t in times:
        k, rest = divmod(t - first, step)
        if rest:
            return None
        out.append(int(k))
    return out


def bucket_grid(
    bounds: Sequence[datetime], segment_starts: Sequence[datetime], step: int
) -> tuple[list[int], list[int]] | None:
    """The buckets' bounds and the segments' starts (those before the range at its start) as indexes on
    the grid of ``step`` seconds from ``bounds[0]``; None when one is off it."""
    first = bounds[0].timestamp()
    edges = grid_indexes([b.timestamp() for b in bounds], first, step)
    cuts = grid_indexes([max(s.timestamp(), first) for s in segment_starts], first, step)
    return None if edges is None or cuts is None else (edges, cuts)


async def quarter_sums(
    conn: Conn,
    device_id: str,
    bounds: list[datetime],
    segment_starts: list[datetime],
    directions: tuple[str, ...],
) -> BucketSums:
    """(import, export) sums per (bucket index, segment index) of the quarters in [bounds[0], bounds[-1]);
    None for a direction not asked for. Empty when a bound is off the quarter grid (a historical offset
    such as +00:19:32): then no dynamic cost at all, never a guess."""
    first = bounds[0].timestamp()
    grid = bucket_grid(bounds, segment_starts, QUARTER_S)
    if grid is None:
        return {}
    edges, cuts = grid
    span = await reading_span(conn, device_id, first, bounds[-1].timestamp(), QUARTER_S)
    if span is None:
        return by_bucket(dict.fromkeys(directions, PrefixSums.zero()), edges, cuts)
    start = bounds[0] + timedelta(seconds=span[0] * QUARTER_S)
    sums = await quarter_prefix(
        conn, device_id, start, start + timedelta(seconds=(span[1] - span[0]) * QUARTER_S), directions
    )
    shifted = {d: replace(p, shift=span[0]) for d, p in sums.items()}
    return by_bucket(shifted, edges, cuts)


def by_bucket(sums: dict[str, PrefixSums], edges: list[int], cuts: list[int]) -> BucketSums:
    """Each (bucket, segment)'s part of the prefix sums, whose grid ``edges`` (the buckets' bounds) and
    ``cuts`` (each segment's first index) are given on."""
    out: BucketSums = {}
    for j in range(len(edges) - 1):
        a, b = edges[j], edges[j + 1]
        s = max(0, bisect_right(cuts, a) - 1)
        while a < b:
            end = min(b, cuts[s + 1]) if s + 1 < len(cuts) else b
            imports, exports = sums.get("import"), sums.get("export")
            out[(j, s)] = (
                None if imports is None else imports.between(a, end),
                None if exports is None else exports.between(a, end),
            )
            a, s = end, s + 1
    return out


_PRICES_BETWEEN_SQL: Final = """
SELECT date_part('epoch', start) AS a, date_part('epoch', "end") AS b,
       import_eur_per_kwh::float8 AS pi, export_eur_per_kwh::float8 AS pe
  FROM energy_prices WHERE start >= $1::timestamptz - interval '1 day' AND start < $2 AND "end" > $1
 ORDER BY start"""


@dataclass(frozen=True, slots=True)
class Prices:
    """Market price intervals in time order: starts, ends (UTC seconds), import and export prices."""

    starts: list[float]
    ends: list[float]
    imports: list[float | None]
    exports: list[float | None]


async def prices_between(conn: Conn, start: datetime, end: datetime) -> Prices:
    rows = await conn.fetch(_PRICES_BETWEEN_SQL, start, end)
    return Prices(
        [r["a"] for r in rows], [r["b"] for r in rows], [r["pi"] for r in rows], [r["pe"] for r in rows]
    )
