"""Tariff plans and market prices into PostgreSQL (migration 0010): `p1-ingest tariffs load|show` and
`p1-ingest prices load`. Validation is p1_tariffs'; this module only writes what it accepted and reads
the plans back.

Each load is one transaction that ends by bumping ``tariff_revision`` (query keys its answers with costs
by it), so a reader sees the old plans or the new ones, never a mix, and a failed load leaves both.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TextIO

import asyncpg

from p1_tariffs.prices import COLUMNS as PRICE_COLUMNS
from p1_tariffs.prices import PriceReader, PriceRow
from p1_tariffs.rules import PLAN_COLUMNS, TariffPlan

BUMP_SQL: Final = "UPDATE tariff_revision SET revision = revision + 1 RETURNING revision"
# DELETE, not TRUNCATE: readers keep reading the old plans (MVCC) until the commit, never blocked.
DELETE_PLANS_SQL: Final = "DELETE FROM tariff_plans"
PLANS_SQL: Final = f"SELECT {', '.join(PLAN_COLUMNS)} FROM tariff_plans ORDER BY device_id, starts_at"
STAGE: Final = "energy_prices_stage"
STAGE_SQL: Final = f"CREATE TEMP TABLE {STAGE} (LIKE energy_prices) ON COMMIT DROP"
_PRICE_COLS: Final = ", ".join(f'"{c}"' for c in PRICE_COLUMNS)
# (xmax = 0): the row was inserted, not updated (PostgreSQL's usual tell for an upsert).
UPSERT_PRICES_SQL: Final = f"""
WITH up AS (
    INSERT INTO energy_prices ({_PRICE_COLS}) SELECT {_PRICE_COLS} FROM {STAGE}
    ON CONFLICT (start) DO UPDATE SET "end" = EXCLUDED."end",
        import_eur_per_kwh = EXCLUDED.import_eur_per_kwh, export_eur_per_kwh = EXCLUDED.export_eur_per_kwh
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) AS total,
       (SELECT min(start) FROM {STAGE}) AS first, (SELECT max("end") FROM {STAGE}) AS last
FROM up"""
# Intervals that overlap (this file's among themselves or with stored ones), near what was loaded: a
# moment would have two prices. At most 5 named.
OVERLAPS_SQL: Final = f"""
WITH span AS (SELECT min(start) - interval '1 day' AS lo, max("end") AS hi FROM {STAGE}),
near AS (
    SELECT start, lag(start) OVER w AS prev_start, lag("end") OVER w AS prev_end
      FROM energy_prices, span WHERE start >= span.lo AND start < span.hi WINDOW w AS (ORDER BY start)
)
SELECT prev_start, start FROM near WHERE start < prev_end ORDER BY start LIMIT 5"""


class PricesError(Exception):
    """The prices file cannot be stored; ``problems`` has one line each (nothing was stored)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class PlansLoaded:
    rows: int
    replaced: int
    revision: int


@dataclass(frozen=True)
class PricesLoaded:
    inserted: int
    replaced: int
    revision: int
    first: datetime | None
    last: datetime | None


async def replace_plans(database_url: str, rows: list[TariffPlan]) -> PlansLoaded:
    """The whole of tariff_plans replaced by ``rows``, in one transaction with the revision's bump."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            revision = await conn.fetchval(BUMP_SQL)  # first: concurrent loads wait here, one by one
            replaced = int((await conn.execute(DELETE_PLANS_SQL)).split()[-1])
            await conn.copy_records_to_table(
                "tariff_plans",
                records=[tuple(getattr(row, c) for c in PLAN_COLUMNS) for row in rows],
                columns=list(PLAN_COLUMNS),
            )
    finally:
        await conn.close()
    return PlansLoaded(len(rows), replaced, int(revision))


async def stored_plans(database_url: str) -> list[TariffPlan]:
    conn = await asyncpg.connect(database_url)
    try:
        return [TariffPlan.from_record(r) for r in await conn.fetch(PLANS_SQL)]
    finally:
        await conn.close()


def _records(reader: PriceReader) -> Iterator[tuple[object, ...]]:
    for row in reader:
        yield _record(row)


def _record(row: PriceRow) -> tuple[object, ...]:
    return (row.start, row.end, row.import_eur_per_kwh, row.export_eur_per_kwh)


async def load_prices(database_url: str, text: TextIO) -> PricesLoaded:
    """The prices of ``text`` (a CSV read as it streams through COPY into a staging table), merged into
    energy_prices by start in one transaction; raises PricesError (nothing stored) for any bad row."""
    reader = PriceReader(text)
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            revision = await conn.fetchval(BUMP_SQL)
            await conn.execute(STAGE_SQL)
            await conn.copy_records_to_table(STAGE, records=_records(reader), columns=list(PRICE_COLUMNS))
            if reader.bad_rows:
                more = reader.bad_rows - len(reader.problems)
                raise PricesError(reader.problems + ([f"… and {more} more bad row(s)"] if more > 0 else []))
            done = await conn.fetchrow(UPSERT_PRICES_SQL)
            overlaps = await conn.fetch(OVERLAPS_SQL)  # after the merge: stored rows count too
            if overlaps:
                raise PricesError([_overlap(r["prev_start"], r["start"]) for r in overlaps])
    finally:
        await conn.close()
    assert done is not None
    inserted, total = int(done["inserted"]), int(done["total"])
    return PricesLoaded(inserted, total - inserted, int(revision), done["first"], done["last"])


def _overlap(earlier: datetime, later: datetime) -> str:
    return (
        f"the interval from {later.isoformat()} begins before the one from {earlier.isoformat()} ends "
        "(stored or in this file): a moment would have two prices"
    )
