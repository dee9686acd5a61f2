"""Dynamic prices' statements: energy per quarter-hour priced by the market price of its interval.

Each quarter's energy is C(quarter end) − C(quarter start) of ``rollup_15m``'s rows, with C interpolated
between a row's first reading and the previous row's last (the start) and between its last reading and the
next row's first (the end): docs/design.md §6's interpolation, at quarter bounds, in the database. An
hourly price covers its four quarters (each price row is spread over the quarters it spans), so energy is
interpolated within the price interval and summed. One statement joins a year of quarters (~35,000) with
as many prices and sums them per (bucket, plan segment): no quarter travels to Python.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from asyncpg import Record

from p1_query.db import Conn


def _counter(name: str) -> str:
    """A quarter's rise of counter ``name`` (``rollup_15m``'s ``{name}_min``/``_max``), never negative. The
    neighbouring row is another epoch's (a new meter) or none: C held at the row's own reading."""
    start = (
        f"CASE WHEN p_epoch IS DISTINCT FROM epoch OR p_{name} IS NULL OR f <= pl THEN {name}_min "
        f"ELSE p_{name} + ({name}_min - p_{name}) * (qs - pl) / (f - pl) END"
    )
    end = (
        f"CASE WHEN n_epoch IS DISTINCT FROM epoch OR n_{name} IS NULL OR nf <= l THEN {name}_max "
        f"ELSE {name}_max + (n_{name} - {name}_max) * (qs + 900 - l) / (nf - l) END"
    )
    return f"greatest(0, ({end}) - ({start}))"


_DIRECTIONS: Final = {"import": ("import_kwh", "ei", "pi"), "export": ("export_kwh", "ee", "pe")}


def _quarter_sums_sql(directions: tuple[str, ...]) -> str:
    """The statement for the dynamic ``directions`` only (a plan's export is often fixed: half the work).

    $1 device, $2 first bound, $3 last bound, $4 the buckets' bounds, $5 the plan segments' starts. The
    window runs in the primary key's order (bucket, epoch), with no partition to sort by: a neighbour of
    another epoch counts as none. A bucket's rows of two epochs each join their quarter's price: the sums
    add them, so no grouping by quarter first. Prices start up to a day before $2 (a price spans at most
    a day, migration 0010); a quarter-hour price is its own quarter, a longer one is spread over its
    quarters (``generate_series`` per row cost more than the rest, so only for those)."""
    names = [_DIRECTIONS[d] for d in directions]
    window = ", ".join(
        f"{c}_min, {c}_max, lag({c}_max) OVER w AS p_{c}, lead({c}_min) OVER w AS n_{c}" for c, _, _ in names
    )
    energies = ", ".join(f"{_counter(c)} AS {e}" for c, e, _ in names)
    prices = ", ".join(
        f"{d}_eur_per_kwh::float8 AS {p}" for d, (_, _, p) in zip(directions, names, strict=True)
    )
    sums = ",\n       ".join(
        f"coalesce(sum(q.{e} * p.{p}), 0) AS {d}_market,"
        f" coalesce(sum(q.{e}) FILTER (WHERE p.{p} IS NOT NULL), 0) AS {d}_priced,"
        f" coalesce(sum(q.{e}) FILTER (WHERE p.{p} IS NULL), 0) AS {d}_unpriced"
        for d, (_, e, p) in zip(directions, names, strict=True)
    )
    return f"""
WITH r AS (
    SELECT bucket, epoch, date_part('epoch', bucket) AS qs,
           date_part('epoch', first_ts) AS f, date_part('epoch', last_ts) AS l, {window},
           lag(epoch) OVER w AS p_epoch, lag(date_part('epoch', last_ts)) OVER w AS pl,
           lead(epoch) OVER w AS n_epoch, lead(date_part('epoch', first_ts)) OVER w AS nf
      FROM rollup_15m
     WHERE device_id = $1 AND bucket >= $2::timestamptz - interval '15 minutes'
       AND bucket < $3::timestamptz + interval '15 minutes'
    WINDOW w AS (ORDER BY bucket, epoch)
), q AS (
    SELECT bucket, {energies} FROM r WHERE bucket >= $2 AND bucket < $3
), e AS (
    SELECT * FROM energy_prices
     WHERE start >= $2::timestamptz - interval '1 day' AND start < $3 AND "end" > $2
), p AS (
    SELECT start AS bucket, {prices} FROM e WHERE "end" = start + interval '15 minutes'
    UNION ALL
    SELECT g AS bucket, {prices}
      FROM e, generate_series(start, "end" - interval '1 microsecond', interval '15 minutes') AS g
     WHERE "end" <> start + interval '15 minutes'
)
SELECT width_bucket(q.bucket, $4::timestamptz[]) - 1 AS i, width_bucket(q.bucket, $5::timestamptz[]) - 1 AS s,
       {sums}
  FROM q LEFT JOIN p USING (bucket)
 GROUP BY 1, 2"""


QUARTER_SUMS_SQL: Final[dict[tuple[str, ...], str]] = {
    directions: _quarter_sums_sql(directions)
    for directions in (("import",), ("export",), ("import", "export"))
}


@dataclass(frozen=True, slots=True)
class Direction:
    """One direction's quarters in a (bucket, segment): Σ energy × market price, the energy that had a
    price, and the energy that had none (kWh)."""

    market: float
    priced: float
    unpriced: float


async def quarter_sums(
    conn: Conn,
    device_id: str,
    bounds: list[datetime],
    segment_starts: list[datetime],
    directions: tuple[str, ...],
) -> dict[tuple[int, int], tuple[Direction | None, Direction | None]]:
    """(import, export) sums per (bucket index, segment index) of the quarters in [bounds[0], bounds[-1]);
    None for a direction not asked for."""
    sql = QUARTER_SUMS_SQL[directions]
    rows = await conn.fetch(sql, device_id, bounds[0], bounds[-1], bounds, segment_starts)

    def sums(row: Record, direction: str) -> Direction | None:
        if direction not in directions:
            return None
        return Direction(row[f"{direction}_market"], row[f"{direction}_priced"], row[f"{direction}_unpriced"])

    return {(row["i"], row["s"]): (sums(row, "import"), sums(row, "export")) for row in rows}


_PRICES_SQL: Final = """
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
    rows = await conn.fetch(_PRICES_SQL, start, end)
    return Prices(
        [r["a"] for r in rows], [r["b"] for r in rows], [r["pi"] for r in rows], [r["pe"] for r in rows]
    )
