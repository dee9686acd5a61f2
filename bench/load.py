"""Load test: many simulated edges uploading small batches while readers poll realtime and series.

Default (the issue's scenario): 500 edges, each posting a 10-reading batch every 10 s, plus readers polling
realtime and series, for 120 s, against one ingest and one query process on loopback (started here on a
fresh database). Afterwards every device's stored rows are counted: zero loss and zero duplicates or the
run fails (``duplicates`` counts readings ingest reported as already stored, though each was sent once,
and ``rollup mismatch`` the devices whose 15-minute rollups do not count exactly their raw rows).
Each batch's readings are spread evenly over the period just ended, so their times follow the clock
whatever ``--period`` is. ``--ramp`` repeats short runs with more and more edges until the service
saturates (errors, or p99 above ``--p99-limit-ms``, or the clients cannot keep the schedule) and reports
the last good level.

Only 127.0.0.1 is ever contacted. Every loop is bounded by the run's duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from p1_servicekit.testing import ServiceProcess, console_script, free_port
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

BATCH = 10


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    sent_readings: int = 0
    sent_by_device: dict[str, int] = field(default_factory=dict)
    reported_duplicates: int = 0
    uploaded: set[str] = field(default_factory=set)  # devices with at least one stored batch
    late_ticks: int = 0

    def record(self, kind: str, seconds: float, ok: bool) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        if not ok:
            self.errors[kind] = self.errors.get(kind, 0) + 1


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def edge(
    n: int, client: httpx.AsyncClient, ingest: str, stats: Stats, stop_at: float, period_s: float
) -> None:
    device, token = f"e{n}", f"t{n}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    rng = random.Random(n)
    imported = 1000.0 + n
    step = timedelta(seconds=period_s / BATCH)  # 10 readings per period, keeping pace with the clock
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=period_s)
    # Spread the edges over the period, as real ones are.
    next_at = time.monotonic() + rng.uniform(0, period_s)
    while True:
        delay = next_at - time.monotonic()
        if delay < -1.0:
            stats.late_ticks += 1
        await asyncio.sleep(max(0.0, delay))
        if time.monotonic() >= stop_at:
            return
        samples = []
        for _ in range(BATCH):
            ts += step
            power = rng.uniform(100, 3000)
            imported += power / 3_600_000
            samples.append(
                {
                    "ts": ts.isoformat(),
                    "power_w": round(power, 1),
                    "import_kwh": round(imported, 6),
                    "export_kwh": 0.0,
                }
            )
        body = json.dumps({"device_id": device, "samples": samples})
        started = time.perf_counter()
        try:
            r = await client.post(f"{ingest}/v1/samples", content=body, headers=headers)
            answer = r.json() if r.status_code == 200 else {}
            ok = answer.get("accepted") == BATCH
            stats.reported_duplicates += int(answer.get("duplicates", 0))
        except (httpx.HTTPError, ValueError, TypeError):
            ok = False
        stats.record("ingest", time.perf_counter() - started, ok)
        stats.sent_readings += BATCH
        stats.sent_by_device[device] = stats.sent_by_device.get(device, 0) + BATCH
        if ok:
            stats.uploaded.add(device)
        next_at += period_s


async def reader(
    n: int, client: httpx.AsyncClient, query: str, edges: int, stats: Stats, stop_at: float, rate_hz: float
) -> None:
    rng = random.Random(10_000 + n)
    headers = {"Authorization": "Bearer reader"}
    while time.monotonic() < stop_at:
        device = f"e{rng.randrange(edges)}"
        # 404 is right only for a device with nothing stored yet; once a batch of it was stored,
        # realtime and series must find it.
        known = device in stats.uploaded
        now = datetime.now(UTC)
        for kind, path, params in (
            ("realtime", f"/v1/devices/{device}/realtime", {}),
            (
                "series",
                f"/v1/devices/{device}/series",
                {"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat(), "bucket": "1m"},
            ),
        ):
            started = time.perf_counter()
            try:
                r = await client.get(query + path, params=params, headers=headers)
                ok = r.status_code == 200 or (r.status_code == 404 and not known)
            except httpx.HTTPError:
                ok = False
            stats.record(kind, time.perf_counter() - started, ok)
        await asyncio.sleep(1.0 / rate_hz)


async def count_rows(database_url: str) -> dict[str, tuple[int, int, int]]:
    """Per device: raw rows, distinct timestamps, and the readings its 15-minute rollups count."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """
            SELECT s.device_id, s.n, s.d, coalesce(r.n, 0) AS rolled
              FROM (SELECT device_id, count(*) AS n, count(DISTINCT ts) AS d FROM samples GROUP BY 1) s
              LEFT JOIN (SELECT device_id, sum(n) AS n FROM rollup_15m GROUP BY 1) r USING (device_id)
            """
        )
    finally:
        await conn.close()
    return {r["device_id"]: (r["n"], r["d"], int(r["rolled"])) for r in rows}


async def run_level(
    edges: int, duration_s: float, period_s: float, readers: int, ingest: str, query: str
) -> Stats:
    stats = Stats()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        stop_at = time.monotonic() + duration_s
        tasks = [edge(n, client, ingest, stats, stop_at, period_s) for n in range(edges)]
        tasks += [reader(n, client, query, edges, stats, stop_at, 2.0) for n in range(readers)]
        await asyncio.wait_for(asyncio.gather(*tasks), duration_s + 60)
    return stats


@contextmanager
def services(database_url: str, edges: int, workers: int) -> Iterator[tuple[str, str]]:
    # Short names: the whole table travels in one environment variable (at most 128 KiB on Linux).
    tokens = ",".join(f"t{n}:e{n}" for n in range(edges))
    redis_url = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/8")  # optional: works without
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "REDIS_URL": redis_url}
    ip, qp = free_port(), free_port()
    ingest = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(ip), "--workers", str(workers)],
        {**env, "DEVICE_TOKENS": tokens},
        ip,
    ).start()
    try:
        query = ServiceProcess(
            [console_script("p1-query"), "serve", "--port", str(qp)], {**env, "READ_TOKENS": "reader:*"}, qp
        ).start()
        try:
            yield ingest.base_url, query.base_url
        finally:
            query.stop()
    finally:
        ingest.stop()


def report(edges: int, stats: Stats, duration_s: float) -> dict[str, object]:
    row: dict[str, object] = {"edges": edges, "readings/s": round(stats.sent_readings / duration_s)}
    for kind in ("ingest", "realtime", "series"):
        lat = stats.latencies.get(kind, [])
        row[f"{kind} n"] = len(lat)
        row[f"{kind} p50 ms"] = round(pct(lat, 0.50), 1)
        row[f"{kind} p99 ms"] = round(pct(lat, 0.99), 1)
        row[f"{kind} errors"] = stats.errors.get(kind, 0)
    row["late ticks"] = stats.late_ticks
    return row


async def main_async(args: argparse.Namespace) -> int:
    server = pg_server_url()
    max_edges = max(args.levels) if args.ramp else args.edges
    levels = args.levels if args.ramp else [args.edges]
    failures = 0
    good_level = 0
    for level in levels:
        database_url = await create_database(server, "p1_load")
        try:
            from p1_schema.migrate import migrate

            await migrate(database_url)
            with services(database_url, max_edges, args.workers) as (ingest, query):
                stats = await run_level(level, args.duration, args.period, args.readers, ingest, query)
            stored = await count_rows(database_url)
        finally:
            await drop_database(database_url)
        row = report(level, stats, args.duration)
        # per device, so that extra rows of one device cannot hide lost rows of another
        lost = sum(max(0, sent - stored.get(dev, (0, 0, 0))[0]) for dev, sent in stats.sent_by_device.items())
        extra = sum(max(0, n - stats.sent_by_device.get(dev, 0)) for dev, (n, _, _) in stored.items())
        dups = stats.reported_duplicates + sum(n - d for n, d, _ in stored.values()) + extra
        mismatch = sum(1 for n, _, rolled in stored.values() if rolled != n)
        row["lost"], row["duplicates"], row["rollup mismatch"] = lost, dups, mismatch
        print(json.dumps(row), flush=True)
        errors = sum(stats.errors.values())
        saturated = (
            errors > 0
            or float(str(row["ingest p99 ms"])) > args.p99_limit_ms
            or stats.late_ticks > level * 0.01
        )
        if lost or dups or mismatch:
            failures += 1
        if not args.ramp:
            failures += errors > 0
            break
        if saturated:
            print(f"saturated at {level} edges; last good level: {good_level} edges", flush=True)
            break
        good_level = level
    if args.ramp and good_level == levels[-1]:
        print(f"no saturation up to {good_level} edges", flush=True)
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--edges", type=int, default=500)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--period", type=float, default=10.0, help="seconds between an edge's uploads")
    parser.add_argument("--readers", type=int, default=4, help="clients polling realtime and series")
    parser.add_argument("--workers", type=int, default=1, help="ingest worker processes")
    parser.add_argument("--ramp", action="store_true", help="find the saturation point")
    parser.add_argument("--levels", type=int, nargs="+", default=[500, 1000, 2000, 4000, 8000])
    parser.add_argument("--p99-limit-ms", type=float, default=500.0)
    args = parser.parse_args()
    if args.ramp and args.duration == 120.0:
        args.duration = 40.0
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
