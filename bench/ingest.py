"""Ingest throughput against the storage floor (issue 3).

End to end: N readings (default 200,000) in 1,000-reading batches from 8 concurrent HTTP clients against a
real ``p1-ingest serve`` process (rollups and Redis on), on a fresh database. Floor, in the same run: the
same rows inserted straight into an equivalent plain table with asyncpg (unnest, ON CONFLICT DO NOTHING,
8 connections, a prepared statement), with no HTTP, no parsing, no rollups. Prints readings/s of both and
the ratio (goal: ≥ 0.8). The floor and the HTTP runs alternate in rounds over fresh slices of the data
(the machine may be shared), and the ratio is the median of the rounds' ratios.

Only 127.0.0.1 is contacted. Every loop is bounded by the number of batches.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from p1_ingest.fields import FIELDS
from p1_schema.migrate import migrate
from p1_servicekit.testing import ServiceProcess, console_script, free_port
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

CLIENTS = 8


def readings(device: int, n: int, start: datetime) -> list[dict[str, object]]:
    """A realistic three-phase Belgian meter, one reading per second."""
    rnd = random.Random(device)
    imp, exp, gas = 10_000.0 + device, 2_000.0, 3_000.0
    out: list[dict[str, object]] = []
    for i in range(n):
        ts = start + timedelta(seconds=i)
        p = rnd.uniform(-3000, 6000)
        if p > 0:
            imp += p / 3_600_000
        else:
            exp += -p / 3_600_000
        if i % 300 == 0:
            gas += 0.01
        out.append(
            {
                "ts": ts.isoformat().replace("+00:00", "Z"),
                "power_w": round(p),
                "import_kwh": round(imp, 3),
                "export_kwh": round(exp, 3),
                "import_t1_kwh": round(imp * 0.6, 3),
                "import_t2_kwh": round(imp * 0.4, 3),
                "export_t1_kwh": round(exp * 0.5, 3),
                "export_t2_kwh": round(exp * 0.5, 3),
                "tariff": 1 + (i // 3600) % 2,
                "power_l1_w": round(p / 3),
                "power_l2_w": round(p / 3),
                "power_l3_w": round(p / 3),
                "voltage_l1_v": round(rnd.uniform(225, 240), 1),
                "voltage_l2_v": round(rnd.uniform(225, 240), 1),
                "voltage_l3_v": round(rnd.uniform(225, 240), 1),
                "current_l1_a": round(abs(p) / 3 / 230, 2),
                "current_l2_a": round(abs(p) / 3 / 230, 2),
                "current_l3_a": round(abs(p) / 3 / 230, 2),
                "avg_power_15m_w": round(abs(p) * 0.8),
                "month_peak_w": 4321.0,
                "month_peak_ts": "2026-11-04T10:15:00+01:00",
                "gas_m3": round(gas, 3),
                "gas_ts": (ts.replace(second=0, microsecond=0)).isoformat(),
            }
        )
    return out


async def run_http(
    clients: list[httpx.AsyncClient], bodies: list[list[bytes]], tokens: list[str], gzipped: bool
) -> float:
    async def client(i: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[i]}", "Content-Type": "application/json"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        for body in bodies[i]:
            r = await clients[i].post("/v1/samples", content=body, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(len(bodies))))
    return time.perf_counter() - started


def to_columns(batch: list[dict[str, object]]) -> list[list[object]]:
    cols: list[list[object]] = []
    for f in FIELDS:
        col = [r.get(f.name) for r in batch]
        if f.kind == "datetime":
            col = [None if v is None else datetime.fromisoformat(str(v)) for v in col]
        elif f.kind == "float":
            col = [None if v is None else float(v) for v in col]  # type: ignore[arg-type]
        cols.append(col)
    return cols


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of processes (and their waited-for children), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def tree_pids(root: int) -> list[int]:
    """``root`` and its descendants (uvicorn workers)."""
    found = [root]
    for _ in range(3):  # depth is at most 2: server → workers
        for pid in list(found):
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    found += [int(c) for c in f.read().split() if int(c) not in found]
            except FileNotFoundError:
                continue
    return found


async def backend_pids(conn: asyncpg.Connection, exclude: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> $1", exclude
    )
    return [r["pid"] for r in rows]


@dataclass
class Run:
    seconds: float
    client_cpu: float
    server_cpu: float = 0.0
    pg_cpu: float = 0.0


async def run_floor(url: str, table: str, device_batches: list[list[list[list[object]]]]) -> Run:
    cols = ", ".join(f.name for f in FIELDS)
    args = ", ".join(f"${i + 2}::{f.pg_type}[]" for i, f in enumerate(FIELDS))
    sql = (
        f"INSERT INTO {table} (device_id, {cols}) SELECT $1, * FROM unnest({args}) "
        "ON CONFLICT (device_id, ts) DO NOTHING"
    )
    conns = [await asyncpg.connect(url) for _ in range(CLIENTS)]
    try:
        stmts = [await c.prepare(sql) for c in conns]
        pids = [c.get_server_pid() for c in conns]

        async def worker(i: int) -> None:
            for batch in device_batches[i]:
                await stmts[i].fetch(f"dev-{i}", *batch)

        pg0, cpu0, started = cpu_seconds(pids), time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(CLIENTS)))
        seconds = time.perf_counter() - started
        return Run(seconds, time.process_time() - cpu0, 0.0, cpu_seconds(pids) - pg0)
    finally:
        for c in conns:
            await c.close()


_ROUTE = '{method="POST",route="/v1/samples",service="ingest"}'


def summarize_metrics(text: str) -> str:
    """Mean server-side DB write and request time per batch (one worker's view when there are several)."""
    values: dict[str, float] = {}
    wanted = {
        "p1_ingest_db_write_seconds_sum": "db_sum",
        "p1_ingest_db_write_seconds_count": "db_count",
        f"p1_http_request_duration_seconds_sum{_ROUTE}": "req_sum",
        f"p1_http_request_duration_seconds_count{_ROUTE}": "req_count",
        'p1_redis_errors_total{service="ingest"}': "redis_errors",
    }
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in wanted:
            values[wanted[name]] = float(value)
    try:
        db = values["db_sum"] / values["db_count"]
        req = values["req_sum"] / values["req_count"]
    except (KeyError, ZeroDivisionError):
        return "server-side means: n/a"
    return (
        f"server-side means per batch (one worker): request {req * 1000:.0f} ms, DB write {db * 1000:.0f} ms;"
        f" Redis errors {values.get('redis_errors', 0):.0f}"
    )


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_INGEST_WORKERS", "1")))
    ap.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"))
    ap.add_argument("--rounds", type=int, default=5, help="alternating floor / HTTP rounds")
    ap.add_argument("--hold", action="store_true", help="wait for enter before the HTTP run (py-spy)")
    opts = ap.parse_args()

    per_client = opts.readings // CLIENTS
    start = datetime(2026, 10, 1, tzinfo=UTC)
    data = [readings(i, per_client, start) for i in range(CLIENTS)]
    steps = range(0, per_client, opts.batch)
    bodies = [
        [json.dumps({"device_id": f"dev-{i}", "samples": d[k : k + opts.batch]}).encode() for k in steps]
        for i, d in enumerate(data)
    ]
    # The same readings as the edge sends them (gzip, compressed once on the edge), for other devices.
    gz_bodies = [
        [gzip.compress(b.replace(b'"dev-', b'"gz-', 1)) for b in client_bodies] for client_bodies in bodies
    ]
    floor_batches = [[to_columns(d[k : k + opts.batch]) for k in steps] for d in data]
    total = per_client * CLIENTS
    tokens = [f"bench-token-{i}" for i in range(CLIENTS)]
    gz_tokens = [f"bench-gz-token-{i}" for i in range(CLIENTS)]

    n_batches = len(steps)
    per_round = -(-n_batches // opts.rounds)
    slices = [
        slice(r * per_round, (r + 1) * per_round) for r in range(opts.rounds) if r * per_round < n_batches
    ]

    url = await create_database(pg_server_url(), prefix="p1_bench")
    try:
        await migrate(url)
        conn = await asyncpg.connect(url)
        try:
            # The floor's table: the same columns and primary key as samples, plain (no partitions).
            await conn.execute(
                "CREATE TABLE floor_samples (LIKE samples INCLUDING DEFAULTS INCLUDING INDEXES)"
            )
            await conn.execute("SELECT p1_ensure_samples_partition('2026-10-01')")
        finally:
            await conn.close()

        port = free_port()
        server = ServiceProcess(
            [console_script("p1-ingest"), "serve", "--port", str(port), "--workers", str(opts.workers)],
            {
                "DATABASE_URL": url,
                "REDIS_URL": opts.redis,
                "DEVICE_TOKENS": ",".join(
                    [f"{t}:dev-{i}" for i, t in enumerate(tokens)]
                    + [f"{t}:gz-{i}" for i, t in enumerate(gz_tokens)]
                ),
                "LOG_LEVEL": "WARNING",
                "DB_POOL_MIN": "8",
            },
            port,
        ).start()
        # The machine may be shared and its load shifts: the floor and the two HTTP runs alternate in
        # rounds over fresh slices of the data, and the ratio is the median of the rounds' ratios.
        rounds: list[dict[str, Run]] = []
        # One HTTP client (connection) per simulated edge for the whole run, as edges keep theirs.
        clients = [httpx.AsyncClient(base_url=server.base_url, timeout=120) for _ in range(CLIENTS)]
        try:
            async with httpx.AsyncClient(base_url=server.base_url) as http:
                if opts.hold:
                    pid = server.proc.pid if server.proc else "?"
                    print(f"server pid {pid}; press enter to run", flush=True)
                    await asyncio.to_thread(sys.stdin.readline)
                conn = await asyncpg.connect(url)
                try:
                    pids = tree_pids(server.proc.pid) if server.proc else []
                    for part in slices:
                        this: dict[str, Run] = {}
                        this["floor"] = await run_floor(
                            url, "floor_samples", [fb[part] for fb in floor_batches]
                        )
                        for kind, run_bodies, run_tokens, gzipped in (
                            ("plain", bodies, tokens, False),
                            ("gzip", gz_bodies, gz_tokens, True),
                        ):
                            pg_pids = await backend_pids(conn, conn.get_server_pid())
                            srv0, pg0, cpu0 = cpu_seconds(pids), cpu_seconds(pg_pids), time.process_time()
                            http_s = await run_http(
                                clients, [b[part] for b in run_bodies], run_tokens, gzipped
                            )
                            client_cpu = time.process_time() - cpu0
                            pg_pids = sorted(
                                set(pg_pids) | set(await backend_pids(conn, conn.get_server_pid()))
                            )
                            this[kind] = Run(
                                http_s, client_cpu, cpu_seconds(pids) - srv0, cpu_seconds(pg_pids) - pg0
                            )
                        rounds.append(this)
                finally:
                    await conn.close()
                server_side = summarize_metrics((await http.get("/metrics")).text)
        finally:
            for c in clients:
                await c.aclose()
            server.stop()

        conn = await asyncpg.connect(url)
        try:
            stored = await conn.fetchval("SELECT count(*) FROM samples")
            rolled = await conn.fetchval("SELECT sum(n) FROM rollup_15m")
            floor_rows = await conn.fetchval("SELECT count(*) FROM floor_samples")
        finally:
            await conn.close()
        if stored != 2 * total or rolled != 2 * total or floor_rows != total:
            print(
                f"row counts wrong: samples {stored}, rollup n {rolled} (want {2 * total}),"
                f" floor {floor_rows} (want {total})"
            )
            return 1
    finally:
        await drop_database(url)

    per_round_readings = [len(range(n_batches)[part]) * opts.batch * CLIENTS for part in slices]
    print(
        f"ingest bench: {total} readings, {opts.batch}/batch, {CLIENTS} clients, {opts.workers} worker(s),"
        f" {len(slices)} alternating rounds"
    )
    print(f"{'round':<6} {'floor/s':>9} {'plain/s':>9} {'gzip/s':>9} {'plain ratio':>12} {'gzip ratio':>11}")
    ratios: dict[str, list[float]] = {"plain": [], "gzip": []}
    for k, (this, count) in enumerate(zip(rounds, per_round_readings, strict=True), start=1):
        rates = {kind: count / run.seconds for kind, run in this.items()}
        for kind in ratios:
            ratios[kind].append(rates[kind] / rates["floor"])
        print(
            f"{k:<6} {rates['floor']:>9.0f} {rates['plain']:>9.0f} {rates['gzip']:>9.0f}"
            f" {ratios['plain'][-1]:>12.2f} {ratios['gzip'][-1]:>11.2f}"
        )
    print(f"{'path':<46} {'readings/s':>11}   CPU µs/reading: client server  PG")
    for kind, name in (
        ("floor", "floor: asyncpg unnest, 8 connections"),
        ("plain", "end to end: HTTP → ingest → PG (+rollups)"),
        ("gzip", "end to end, gzip bodies (as the edge sends)"),
    ):
        seconds = sum(r[kind].seconds for r in rounds)
        per = [
            sum(getattr(r[kind], a) for r in rounds) / total * 1e6
            for a in ("client_cpu", "server_cpu", "pg_cpu")
        ]
        print(f"{name:<46} {total / seconds:>11.0f}   {'':>16}{per[0]:>6.1f} {per[1]:>6.1f} {per[2]:>5.1f}")
    print(
        f"ratio end to end / floor (median of rounds): {statistics.median(ratios['plain']):.2f} plain JSON,"
        f" {statistics.median(ratios['gzip']):.2f} gzip (goal ≥ 0.8)"
    )
    print(server_side)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
