"""Where a year of quarter-hour dynamic prices spends its time, and the floor of the ways around it.

Issue 15 asks ``bench/query.py``'s year by day with a year of quarter-hour dynamic prices (~35,000 rows) to
answer in ≤ 40 ms p95 uncached. This measures, in-process on one connection (``jit = off``, as query's
pool), on ``bench/query.py``'s cost devices (``load_costs``), requests alternating so the machine's load
weighs on all alike, each printed with its ratio to today's whole ``costs_sql.quarter_sums`` of the year:

- today's ``quarter_sums`` (the baseline), its quarters statement alone, its prices statement alone,
  and the leaner prices statement it had before (each price's epoch, start and end arrays built);
- a narrow per-quarter energy table (what ingest would keep, as capacity keeps its demands): one
  float8 array of the year's quarter energies, and the prices as float8 (a float8 copy of the table) —
  the reads option (d) of the issue would leave, with no interpolation and no product yet;
- the same two tables joined and summed by day in SQL (option (c) on already-computed energies).

The prototypes' tables are filled from the rollups without the series' interpolation: they measure
reading, not answers. Only 127.0.0.1 is contacted; every loop is bounded by a count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from p1_query import costs_sql
from p1_schema.migrate import migrate
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from query import load_costs, pct  # the sibling benchmark's data (bench/ is not a package)

DEVICE = "bench-dyn"
_NARROW_SQL = """
CREATE TABLE proto_quarters (device_id text, bucket timestamptz, import_kwh float8,
                             PRIMARY KEY (device_id, bucket));
INSERT INTO proto_quarters SELECT device_id, bucket, import_kwh_max - import_kwh_min FROM rollup_15m;
CREATE TABLE proto_prices (start timestamptz PRIMARY KEY, import float8);
INSERT INTO proto_prices SELECT start, import_eur_per_kwh::float8 FROM energy_prices"""
_NARROW_ENERGY = """SELECT array_agg(import_kwh ORDER BY bucket) FROM proto_quarters
 WHERE device_id = $1 AND bucket >= $2 AND bucket < $3"""
_NARROW_PRICES = "SELECT array_agg(import ORDER BY start) FROM proto_prices WHERE start >= $1 AND start < $2"
# The prices statement before the lean one: each price's epoch, and start and end arrays built even
# when a CASE does not send them.
_OLD_PRICES = """
SELECT min(a) AS a0, coalesce(bool_and(b - a = 900) AND max(a) - min(a) = 900 * (count(*) - 1), false) AS c,
       array_agg(a) AS a, array_agg(b) AS b, array_agg(import) AS import FROM (
    SELECT date_part('epoch', start) AS a, date_part('epoch', "end") AS b,
           import_eur_per_kwh::float8 AS import
      FROM energy_prices WHERE start >= $1::timestamptz - interval '1 day' AND start < $2 AND "end" > $1
     ORDER BY start) p"""
_NARROW_JOIN = """SELECT date_trunc('day', q.bucket) AS day, sum(q.import_kwh * p.import)
  FROM proto_quarters q JOIN proto_prices p ON p.start = q.bucket
 WHERE q.device_id = $1 AND q.bucket >= $2 AND q.bucket < $3 AND p.start >= $2 AND p.start < $3
 GROUP BY 1"""


async def run(n: int) -> None:
    now = datetime.now(UTC)
    url = await create_database(pg_server_url(), prefix="p1_bench_costs_floor")
    try:
        await migrate(url)
        await load_costs(url, now)
        conn = await asyncpg.connect(url, server_settings={"jit": "off"})
        try:
            await conn.execute(_NARROW_SQL)
            for table in ("proto_quarters", "proto_prices"):  # VACUUM: not in a transaction block
                await conn.execute(f"VACUUM ANALYZE {table}")
            end = now.replace(hour=0, minute=0, second=0, microsecond=0)
            start = end - timedelta(days=365)
            bounds = [start + timedelta(days=k) for k in range(366)]
            first, count, asked = start.timestamp(), 365 * 96, ("import",)

            async def narrow() -> None:
                await conn.fetchval(_NARROW_ENERGY, DEVICE, start, end)
                await conn.fetchval(_NARROW_PRICES, start, end)

            cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                (
                    "quarter_sums, year (today)",
                    lambda: costs_sql.quarter_sums(conn, DEVICE, bounds, [start], asked),
                ),
                (
                    "  its quarters statement",
                    lambda: conn.fetchrow(costs_sql.QUARTERS_SQL[asked], DEVICE, first, start, end, count),
                ),
                ("  its prices statement", lambda: conn.fetchrow(costs_sql.PRICES_SQL[asked], start, end)),
                ("  the prices statement before", lambda: conn.fetchrow(_OLD_PRICES, start, end)),
                ("narrow energies + float8 prices", narrow),
                ("  narrow energies alone", lambda: conn.fetchval(_NARROW_ENERGY, DEVICE, start, end)),
                ("  float8 prices alone", lambda: conn.fetchval(_NARROW_PRICES, start, end)),
                ("narrow join, summed by day in SQL", lambda: conn.fetch(_NARROW_JOIN, DEVICE, start, end)),
            ]
            got: dict[str, list[float]] = {name: [] for name, _ in cases}
            for _, call in cases:
                await call()  # warm-up
            for _ in range(n):
                for name, call in cases:
                    started = time.perf_counter()
                    await call()
                    got[name].append((time.perf_counter() - started) * 1000)
        finally:
            await conn.close()
        base = pct(got[cases[0][0]], 0.5)
        print(f"\n{n} alternating rounds, in-process ms (ratio: p50 ÷ today's quarter_sums p50):")
        for name, ms in got.items():
            p50 = pct(ms, 0.5)
            print(f"{name:36} p50 {p50:7.2f}ms  p95 {pct(ms, 0.95):7.2f}ms  {p50 / base:5.2f} ×")
        load1, load5, _ = os.getloadavg()
        print(f"machine: {os.cpu_count()} cores, load average {load1:.1f} (1 min), {load5:.1f} (5 min)")
    finally:
        await drop_database(url)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=40, help="alternating rounds")
    asyncio.run(run(ap.parse_args().n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
