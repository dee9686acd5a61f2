"""What a running quarter costs PostgreSQL (issue 16: ``capacity/now`` and notify poll it every second).

A fresh, migrated database (``p1_servicekit.testing_db``) holds one device with a month of readings every
10 s (December 2026, 3 kW and 0.5 kW alternating by the hour), loaded by the schema's bulk loader (which
keeps ``capacity_quarters`` and ``capacity_days`` as ingest does), then vacuumed and analysed as
autovacuum would leave it. At the month's last quarter, timed in
the same run, ``--rounds`` times each (median and p99, ms, and the ratio to the baseline):

- baseline: the newest good reading (realtime's PostgreSQL fallback, one index probe);
- ``fetch_inputs`` with the newest reading given (Redis up): one statement;
- ``fetch_inputs`` without it (Redis down): two statements;
- the naive month peak it avoids: max and count over the month's ~3,000 ``capacity_quarters``.

    .venv/bin/python bench/peakguard_store.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from p1_peakguard.store import fetch_inputs, newest_reading
from p1_schema.bulk import load_device
from p1_schema.migrate import migrate
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

DEVICE = "bench-peak"
START = datetime(2026, 11, 30, 23, tzinfo=UTC)  # 1 December, Brussels
STEP_S = 10
READINGS = 31 * 86400 // STEP_S
TZ = ZoneInfo("Europe/Brussels")
_NAIVE_SQL = (
    "SELECT max(kw), count(*) FROM capacity_quarters WHERE device_id = $1 AND bucket >= $2 AND bucket < $3"
)


def readings() -> dict[str, list[object]]:
    ts: list[object] = []
    power: list[object] = []
    imp: list[object] = []
    kwh = 1000.0
    for k in range(READINGS):
        t = START + timedelta(seconds=k * STEP_S)
        p = 3000.0 if t.hour % 2 else 500.0
        ts.append(t)
        power.append(p)
        imp.append(round(kwh, 6))
        kwh += p * STEP_S / 3.6e6
    return {"ts": ts, "power_w": power, "import_kwh": imp, "export_kwh": [0.0] * READINGS}


async def timed(rounds: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    for _ in range(min(50, rounds)):  # warm: prepared statements, caches
        await call()
    spent = []
    for _ in range(rounds):
        began = time.perf_counter()
        await call()
        spent.append((time.perf_counter() - began) * 1000)
    spent.sort()
    return statistics.median(spent), spent[min(len(spent) - 1, int(len(spent) * 0.99))]


async def run(rounds: int) -> None:
    url = await create_database(pg_server_url(), "p1_bench_peak")
    try:
        await migrate(url)
        conn = await asyncpg.connect(url)
        try:
            began = time.perf_counter()
            await load_device(conn, DEVICE, readings())
            print(f"loaded {READINGS:,} readings in {time.perf_counter() - began:.1f} s")
            await conn.execute("VACUUM ANALYZE")  # as autovacuum leaves a live database
            newest = await newest_reading(conn, DEVICE)
            assert newest is not None
            month_start = START

            async def baseline() -> object:
                return await newest_reading(conn, DEVICE)

            async def with_newest() -> object:
                return await fetch_inputs(conn, DEVICE, TZ, newest)

            async def without() -> object:
                return await fetch_inputs(conn, DEVICE, TZ)

            async def naive_peak() -> object:
                return await conn.fetchrow(_NAIVE_SQL, DEVICE, month_start, newest.ts)

            found = await with_newest()
            print(f"inputs at {newest.ts:%Y-%m-%d %H:%M:%S}Z: {found}")
            base = None
            for name, call in (
                ("newest reading (baseline)", baseline),
                ("fetch_inputs, newest given (1 statement)", with_newest),
                ("fetch_inputs, from PostgreSQL (2 statements)", without),
                ("naive month peak over capacity_quarters", naive_peak),
            ):
                median, p99 = await timed(rounds, call)
                base = base or median
                print(f"{name:<46} median {median:6.3f} ms  p99 {p99:6.3f} ms  ×{median / base:5.2f}")
        finally:
            await conn.close()
    finally:
        await drop_database(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args(argv)
    asyncio.run(run(args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
