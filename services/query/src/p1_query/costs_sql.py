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

from p1_query.db import Conn


def _counter(name: str) -> str:
    """A quarter's rise of counter ``name`` (``rollup_15m``'s ``{name}_min``/``_max``), never negative."""
    start = (
        f"CASE WHEN pl IS NULL OR p_{name} IS NULL OR f <= pl THEN {name}_min "
        f"ELSE p_{name} + ({name}_min - p_{name}) * (qs - pl) / (f - pl) END"
    )
    end = (
        f"CASE WHEN nf IS NULL OR n_{name} IS NULL OR nf <= l THEN {name}_max "
        f"ELSE {name}_max + (n_{name} - {name}_max) * (qs + 900 - l) / (nf - l) END"
    )
    return f"greatest(0, ({end}) - ({start}))"


# $1 device, $2 first bound, $3 last bound, $4 the buckets' bounds, $5 the plan segments' starts.
# Prices: rows starting up to a day before $2 (a price spans at most a day, migration 0010).
QUARTER_SUMS_SQL: Final = f"""
WITH r AS (
    SELECT bucket, date_part('epoch', bucket) AS qs,
           date_part('epoch', first_ts) AS f, date_part('epoch', last_ts) AS l,
           import_kwh_min, import_kwh_max, export_kwh_min, export_kwh_max,
           lag(date_part('epoch', last_ts)) OVER w AS pl,
           lag(import_kwh_max) OVER w AS p_import_kwh, lag(export_kwh_max) OVER w AS p_export_kwh,
           lead(date_part('epoch', first_ts)) OVER w AS nf,
           lead(import_kwh_min) OVER w AS n_import_kwh, lead(export_kwh_min) OVER w AS n_export_kwh
      FROM rollup_15m
     WHERE device_id = $1 AND bucket >= $2::timestamptz - interval '15 minutes'
       AND bucket < $3::timestamptz + interval '15 minutes'
    WINDOW w AS (PARTITION BY epoch ORDER BY bucket)
), q AS (
    SELECT bucket, sum({_counter("import_kwh")}) AS ei, sum({_counter("export_kwh")}) AS ee
      FROM r WHERE bucket >= $2 AND bucket < $3 GROUP BY bucket
), p AS (
    SELECT g AS bucket, import_eur_per_kwh::float8 AS pi, export_eur_per_kwh::float8 AS pe
      FROM energy_prices,
           generate_series(start, "end" - interval '1 microsecond', interval '15 minutes') AS g
     WHERE start >= $2::timestamptz - interval '1 day' AND start < $3 AND "end" > $2
)
SELECT width_bucket(q.bucket, $4::timestamptz[]) - 1 AS i,
       width_bucket(q.bucket, $5::timestamptz[]) - 1 AS s,
       coalesce(sum(q.ei * p.pi), 0) AS import_market, coalesce(sum(q.ei) FILTER (WHERE p.pi IS NOT NULL), 0)
           AS import_priced, coalesce(sum(q.ei) FILTER (WHERE p.pi IS NULL), 0) AS import_unpriced,
       coalesce(sum(q.ee * p.pe), 0) AS export_market, coalesce(sum(q.ee) FILTER (WHERE p.pe IS NOT NULL), 0)
           AS export_priced, coalesce(sum(q.ee) FILTER (WHERE p.pe IS NULL), 0) AS export_unpriced
  FROM q LEFT JOIN p USING (bucket)
 GROUP BY 1, 2"""


@dataclass(frozen=True, slots=True)
class Direction:
    """One direction's quarters in a (bucket, segment): Σ energy × market price, the energy that had a
    price, and the energy that had none (kWh)."""

    market: float
    priced: float
    unpriced: float


async def quarter_sums(
    conn: Conn, device_id: str, bounds: list[datetime], segment_starts: list[datetime]
) -> dict[tuple[int, int], tuple[Direction, Direction]]:
    """(import, export) sums per (bucket index, segment index) of the quarters in [bounds[0], bounds[-1])."""
    rows = await conn.fetch(QUARTER_SUMS_SQL, device_id, bounds[0], bounds[-1], bounds, segment_starts)
    return {
        (row["i"], row["s"]): (
            Direction(row["import_market"], row["import_priced"], row["import_unpriced"]),
            Direction(row["export_market"], row["export_priced"], row["export_unpriced"]),
        )
        for row in rows
    }


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
