"""Query service benchmark: one device with a year of history.

History: raw 1 s readings for the last ``--raw-days`` days (30) loaded by the schema's bulk loader
(``p1_schema.bulk``: COPY, then the rollups folded from the stored rows by the schema's fold, the SQL
ingest runs on every insert), and for the 11 months before them the rollup_15m rows that 1 s readings
would have produced, written with SQL (same columns, same first/last semantics, counters continuing
exactly into the raw part), folded into rollup_1h / rollup_1d by the schema's SQL.

Measured on loopback against real uvicorn processes: p50/p95 latency of series (1 year by day, 30 days
by 15 min), capacity and realtime, uncached (a query process without Redis) and cached (one with Redis,
after a warm-up request), as the server's own handler time (``Server-Timing``) and as the client's round
trip; then realtime requests/s against a bare FastAPI endpoint returning a constant, served the same way
(uvicorn, uvloop, httptools, one worker), in the same run, by the same minimal keep-alive client.

Goals (issue 4): year-by-day uncached ≤ 20 ms p95; cached hits ≤ 2 ms p95; realtime ≥ 0.7 × bare req/s;
(issue 13) 30 days by 15 min uncached ≤ 15 ms p95; (issue 15) year by day with a fixed plan ≤ 20 ms p95
uncached, with a year of quarter-hour dynamic prices (~35,000 rows) ≤ 40 ms, a month's bill ≤ 30 ms —
on three devices of the same year of rollups (no plan, fixed, dynamic), requests alternating, each
printed with its ratio to the no-plan series (``--costs-only`` measures these alone). ``--baseline TREE``
also measures another commit's query process (uncached) on the same data, requests alternating with this
one's, and prints the ratios.
Only 127.0.0.1 is contacted; every loop is bounded by a count or a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx

from p1_contracts.models import Sample
from p1_query.price_settle import settle_all
from p1_schema.bulk import load_device
from p1_schema.capacity import refresh
from p1_schema.redis import store_latest
from p1_schema.rollups import HOURS_AND_DAYS_FROM_QUARTERS_SQL
from p1_servicekit.testing import ServiceProcess, console_script, free_port
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

DEVICE = "bench-1"
TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def power_at(t: float) -> float:
    """A household day: 300 W base, 2.2 kW around dinner, a little noise by the second."""
    hour = (t % 86400) / 3600
    return 300.0 + (2200.0 if 16.5 <= hour < 18.5 else 0.0) + (t % 7) * 10.0


ROLLUP_SQL = """
WITH q AS (
    SELECT b AS bucket, extract(epoch FROM b) AS t0,
           300.0 + CASE WHEN (extract(epoch FROM b)::bigint % 86400) / 3600.0 >= 16.5
                          AND (extract(epoch FROM b)::bigint % 86400) / 3600.0 < 18.5 THEN 2200.0 ELSE 0 END
             + 30.0 AS p
      FROM generate_series($2::timestamptz, $3::timestamptz - interval '15 minutes', interval '15 minutes') b
), c AS (
    SELECT *, $4::float8 + sum(p * 900 / 3.6e6) OVER (ORDER BY bucket) - p * 900 / 3.6e6 AS c0 FROM q
)
INSERT INTO rollup_15m (device_id, bucket, epoch, n, power_sum, power_min, power_max, power_import_sum,
                        first_ts, last_ts, import_kwh_min, import_kwh_max, export_kwh_min, export_kwh_max,
                        avg_power_15m_w, month_peak_w)
SELECT $1, bucket, 0, 900, p * 900, p - 30, p + 30, p * 900, bucket, bucket + interval '899 seconds',
       c0, c0 + p * 899 / 3.6e6, 0, 0, p, NULL
  FROM c
"""


def raw_readings(start: float, end: float, counter: float) -> dict[str, list[Any]]:
    """1 s readings of [start, end) (UTC seconds), column-wise; the import counter continues ``counter``."""
    ts, power, imp = [], [], []
    value = counter + power_at(start - 1) / 3.6e6
    t = start
    for _ in range(int(end - start) + 1):  # one per second, the last before end
        if t >= end:
            break
        p = power_at(t)
        ts.append(datetime.fromtimestamp(t, UTC))
        power.append(p)
        imp.append(round(value, 6))
        value += p / 3.6e6
        t += 1.0
    return {
        "ts": ts,
        "power_w": power,
        "import_kwh": imp,
        "export_kwh": [0.0] * len(ts),
        "avg_power_15m_w": power,
    }


async def load(url: str, raw_days: int, now: datetime) -> datetime:
    raw_start = (now - timedelta(days=raw_days)).replace(minute=0, second=0, microsecond=0)
    year_start = raw_start - timedelta(days=365 - raw_days)
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        await conn.execute(ROLLUP_SQL, DEVICE, year_start, raw_start, 1000.0)
        await conn.fetchrow(HOURS_AND_DAYS_FROM_QUARTERS_SQL, DEVICE, year_start, raw_start)
        await refresh(conn, DEVICE, year_start, raw_start)  # the quarter demands, as ingest keeps them
        counter = await conn.fetchval(
            "SELECT max(import_kwh_max) FROM rollup_15m WHERE device_id = $1", DEVICE
        )
        print(f"rollups for {365 - raw_days} days by SQL: {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        end = min(now.timestamp(), raw_start.timestamp() + raw_days * 86400)
        readings = raw_readings(raw_start.timestamp(), end, float(counter))
        rows = await load_device(conn, DEVICE, readings, meter_serial="BENCH")
        elapsed = time.perf_counter() - started
        print(f"raw 1 s for {raw_days} days by the bulk loader: {rows} rows in {elapsed:.1f} s", flush=True)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return year_start


# Issue 15: three devices with the same year of rollup_15m rows (folded into hours and days) and an hour of
# raw readings at the end; ``bench-none`` has no plan, ``bench-fixed`` a fixed plan changing half-way,
# ``bench-dyn`` a dynamic plan and a quarter-hour market price for every quarter of the year.
COST_DEVICES = ("bench-none", "bench-fixed", "bench-dyn")
_PLAN_SQL = """
INSERT INTO tariff_plans (name, device_id, valid_from, tz, starts_at, import_t1, import_t2,
                          import_dynamic, import_markup, export_t1, export_t2, fixed_eur_per_month,
                          capacity_eur_per_kw_year, vat)
VALUES ($1, $2, $3::timestamptz::date, 'UTC', $3, $4::numeric, $4::numeric, $4::numeric IS NULL,
        0.02, 0.04, 0.04, 9.5, 51.6, 0.06)"""
_PRICES_SQL = """
INSERT INTO energy_prices (start, "end", import_eur_per_kwh, export_eur_per_kwh)
SELECT g, g + interval '15 minutes', 0.10 + (extract(epoch FROM g)::bigint % 86400) / 864000.0, 0.03
  FROM generate_series($1::timestamptz, $2::timestamptz - interval '15 minutes', interval '15 minutes') g"""


async def load_costs(url: str, now: datetime) -> None:
    end = now.replace(minute=0, second=0, microsecond=0)
    start = (end - timedelta(days=366)).replace(hour=0)
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        for device in COST_DEVICES:
            await conn.execute(ROLLUP_SQL, device, start, end - timedelta(hours=1), 1000.0)
            await conn.fetchrow(HOURS_AND_DAYS_FROM_QUARTERS_SQL, device, start, end - timedelta(hours=1))
            await refresh(conn, device, start, end - timedelta(hours=1))
            counter = await conn.fetchval(
                "SELECT max(import_kwh_max) FROM rollup_15m WHERE device_id = $1", device
            )
            tail = raw_readings((end - timedelta(hours=1)).timestamp(), end.timestamp(), float(counter))
            await load_device(conn, device, tail, meter_serial="BENCH")
        half = start + timedelta(days=183)
        await conn.execute(_PLAN_SQL, "fixed-1", "bench-fixed", start, 0.28)
        await conn.execute(_PLAN_SQL, "fixed-2", "bench-fixed", half, 0.31)
        await conn.execute(_PLAN_SQL, "dynamic", "bench-dyn", start, None)
        await conn.execute(_PRICES_SQL, start, end)
        await conn.execute("UPDATE tariff_revision SET revision = revision + 1")
        # The year's rollups were written directly: the devices' oldest reading is the year's start.
        async with conn.transaction():  # a write to devices, as the writer the schema expects does it
            await conn.execute("SELECT set_config('p1.ingest_writer', p1_ingest_writer_required(), true)")
            await conn.execute(
                "UPDATE devices SET first_seen = $1 WHERE device_id = ANY($2)", start, COST_DEVICES
            )
        prices = await conn.fetchval("SELECT count(*) FROM energy_prices")
        await conn.execute("ANALYZE")
        elapsed = time.perf_counter() - started
        print(f"costs: 3 devices of a year of rollups, {prices} market prices: {elapsed:.1f} s")
    finally:
        await conn.close()


def alternating(base: str, cases: list[tuple[str, str, dict[str, str]]], n: int) -> dict[str, list[float]]:
    """Server times (ms) of each case, one request of each in turn, ``n`` rounds: a change in the machine's
    load weighs on all alike."""
    out: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    with httpx.Client(base_url=base, headers=AUTH, timeout=30) as c:
        for _, path, params in cases:
            c.get(path, params=params).raise_for_status()  # warm-up
        for _ in range(n):
            for name, path, params in cases:
                r = c.get(path, params=params)
                r.raise_for_status()
                out[name].append(float(r.headers["server-timing"].split("dur=")[1]))
    return out


async def measure_costs(base: str, url: str, now: datetime, n: int) -> list[tuple[str, bool]]:
    """Year by day with no plan, a fixed plan and dynamic prices, and a month's bill, uncached: first with
    no dynamic price sums settled (every quarter read), then settled (migration 0012); the goals."""
    year = {"start": (now - timedelta(days=365)).isoformat(), "end": now.isoformat(), "bucket": "1d"}
    first = now.replace(day=1)
    last_month = f"{(first - timedelta(days=1)):%Y-%m}"
    cases = [
        (f"series year by day, {d.split('-')[1]}", f"/v1/devices/{d}/series", year) for d in COST_DEVICES
    ] + [
        (f"bill of {last_month}, {d.split('-')[1]}", f"/v1/devices/{d}/bill", {"month": last_month})
        for d in COST_DEVICES[1:]
    ]
    unsettled = _report_costs("nothing settled: every quarter read", alternating(base, cases, n), cases, n)
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        days = await settle_all(conn)
        print(f"\nsettling {days} days of dynamic price sums: {time.perf_counter() - started:.2f} s")
    finally:
        await conn.close()
    settled = _report_costs("settled price sums", alternating(base, cases, n), cases, n)
    dyn = cases[2][0]
    print(f"dynamic year, settled ÷ nothing settled (p95): {settled[dyn] / unsettled[dyn]:.3f}")
    return [
        ("year by day, fixed plan, uncached p95 ≤ 20 ms", settled[cases[1][0]] <= 20.0),
        ("year by day, quarter-hour dynamic prices, uncached p95 ≤ 40 ms", settled[dyn] <= 40.0),
        ("bill of a month uncached p95 ≤ 30 ms", max(settled[cases[3][0]], settled[cases[4][0]]) <= 30.0),
    ]


def _report_costs(
    title: str, got: dict[str, list[float]], cases: list[tuple[str, str, dict[str, str]]], n: int
) -> dict[str, float]:
    base95 = pct(got[cases[0][0]], 0.95)
    print(
        f"\ncosts, uncached, {title}, {n} alternating rounds"
        " (server time; ratio: p95 ÷ the no-plan series' p95):"
    )
    for name, ms in got.items():
        p95 = pct(ms, 0.95)
        print(f"{name:36} p50 {pct(ms, 0.5):7.2f}ms  p95 {p95:7.2f}ms  {p95 / base95:5.2f} ×")
    return {name: pct(ms, 0.95) for name, ms in got.items()}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latencies(base: str, path: str, params: dict[str, str], n: int) -> tuple[list[float], list[float]]:
    """(server handler ms from Server-Timing, client round-trip ms) over n sequential requests."""
    server, client = [], []
    with httpx.Client(base_url=base, headers=AUTH, timeout=30) as c:
        c.get(path, params=params).raise_for_status()  # warm-up (and, with Redis, fills the cache)
        for _ in range(n):
            t0 = time.perf_counter()
            r = c.get(path, params=params)
            client.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            timing = r.headers.get("server-timing", "app;dur=nan")
            server.append(float(timing.split("dur=")[1]))
    return server, client


async def _hammer(port: int, path: str, headers: dict[str, str], conns: int, seconds: float) -> int:
    """Requests completed in ``seconds`` by ``conns`` keep-alive connections: a minimal HTTP/1.1 client so
    that the client, which shares the machine's cores with the server, costs as little as possible."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode()
    deadline = time.perf_counter() + seconds
    done = 0

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                header = await reader.readuntil(b"\r\n\r\n")
                if not header.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(header.decode(errors="replace"))
                length = 0
                for line in header.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                done += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(conns)))
    return done


async def compare_rps(
    targets: dict[str, tuple[int, str, dict[str, str]]], conns: int, seconds: float, rounds: int
) -> dict[str, float]:
    """Median requests/s of each target over ``rounds`` rounds that alternate between the targets, so
    that a change in the machine's load (it is shared) weighs on all of them alike."""
    for port, path, headers in targets.values():
        await _hammer(port, path, headers, 4, 0.5)  # warm-up
    runs: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (port, path, headers) in targets.items():
            runs[name].append(await _hammer(port, path, headers, conns, seconds) / seconds)
    return {name: sorted(v)[len(v) // 2] for name, v in runs.items()}


async def asgi_latencies(app: Any, path: str, params: dict[str, str], n: int) -> list[float]:
    """Milliseconds per request calling the ASGI app directly: the application's own time, without
    HTTP parsing, sockets or a client competing for the cores."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(params).encode(),
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {TOKEN}".encode()), (b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    out = []
    for k in range(n + 1):
        t0 = time.perf_counter()
        await app(scope, receive, send)
        if k:  # the first call warms up (and, with Redis, fills the cache)
            out.append((time.perf_counter() - t0) * 1000)
    if set(status) != {200}:
        raise RuntimeError(f"{path}: statuses {sorted(set(status))}")
    return out


async def in_process(url: str, redis_url: str, cases: list[tuple[str, str, dict[str, str]]], n: int) -> None:
    from fastapi import FastAPI, Response

    from p1_query.app import create_app
    from p1_query.settings import QuerySettings

    base = {"database_url": url, "read_tokens": f"{TOKEN}:*", "log_level": "WARNING"}
    uncached = create_app(QuerySettings(**base, realtime_memo_s=0))  # type: ignore[arg-type]
    cached = create_app(QuerySettings(**base, redis_url=redis_url))  # type: ignore[arg-type]
    bare = FastAPI()
    body = b'{"device_id":"bench-1","power_w":412.0}'

    @bare.get("/constant")
    async def constant() -> Response:
        return Response(body, media_type="application/json")

    print(f"\nin-process (ASGI called directly, no HTTP), {n} requests each:")
    async with uncached.router.lifespan_context(uncached), cached.router.lifespan_context(cached):
        for name, path, params in cases:
            for mode, app in (("uncached", uncached), ("cached", cached)):
                if name == "realtime":
                    mode = "postgres" if mode == "uncached" else "memo"
                ms = await asgi_latencies(app, path, params, n)
                print(f"{name:28} {mode:9} p50 {pct(ms, 0.5):8.2f}ms  p95 {pct(ms, 0.95):8.2f}ms")
        ms = await asgi_latencies(bare, "/constant", {}, n)
        print(f"{'bare FastAPI constant':28} {'':9} p50 {pct(ms, 0.5):8.2f}ms  p95 {pct(ms, 0.95):8.2f}ms")


# The packages a query process imports, by path in a source tree (``--baseline``).
_SOURCES = (
    "libs/config/src",
    "libs/contracts/src",
    "libs/servicekit/src",
    "libs/schema/src",
    "libs/tariffs/src",
    "services/query/src",
)


def versus(
    base: str, baseline: str, path: str, params: dict[str, str], n: int
) -> tuple[list[float], list[float]]:
    """Server times (ms) of this tree's process and the baseline's, requests alternating between the two
    so that a change in the machine's load (it is shared) weighs on both alike."""
    mine: list[float] = []
    theirs: list[float] = []
    with httpx.Client(headers=AUTH, timeout=30) as c:
        for url in (base, baseline):
            c.get(url + path, params=params).raise_for_status()  # warm-up
        for _ in range(n):
            for url, out in ((base, mine), (baseline, theirs)):
                r = c.get(url + path, params=params)
                r.raise_for_status()
                out.append(float(r.headers["server-timing"].split("dur=")[1]))
    return mine, theirs


def bare_app() -> None:
    """The baseline: FastAPI returning a constant, under the same uvicorn settings as the services."""
    import uvicorn
    from fastapi import FastAPI, Response

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    body = b'{"device_id":"bench-1","power_w":412.0}'

    @app.get("/constant")
    async def constant() -> Response:
        return Response(body, media_type="application/json")

    @app.get("/readyz")
    async def ready() -> Response:
        return Response(b"{}", media_type="application/json")

    port = int(sys.argv[sys.argv.index("--bare") + 1])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        server_header=False,
    )


def main() -> int:
    if "--bare" in sys.argv:
        bare_app()
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--raw-days", type=int, default=30)
    ap.add_argument("-n", type=int, default=200, help="sequential requests per latency figure")
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each requests/s run")
    ap.add_argument("--rounds", type=int, default=5, help="alternating requests/s rounds per target")
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument(
        "--baseline",
        help="a source tree of another commit (git worktree or git archive): its query process, uncached, "
        "is measured on the same database, requests alternating with this tree's, and the ratios printed",
    )
    ap.add_argument(
        "--baseline-query",
        help="a p1-query console script of an older checkout: capacity is measured on it too, uncached, "
        "against the same database in the same run (its code ignores the tables it does not know)",
    )
    ap.add_argument("--capacity-only", action="store_true", help="measure the capacity ledger only")
    ap.add_argument("--costs-only", action="store_true", help="measure series with costs and the bill only")
    args = ap.parse_args()
    import uvloop

    return uvloop.run(run(args))


async def run(args: argparse.Namespace) -> int:
    from p1_schema.migrate import migrate

    now = datetime.now(UTC)
    url = await create_database(pg_server_url(), prefix="p1_bench_query")
    procs: list[ServiceProcess] = []
    try:
        await migrate(url)
        if not args.costs_only:
            await load(url, args.raw_days, now)
        await load_costs(url, now)
        redis_url = f"redis://127.0.0.1:6379/{os.environ.get('BENCH_REDIS_DB', '10')}"
        from redis.asyncio import Redis

        redis = Redis.from_url(redis_url)
        await redis.flushdb()
        latest = Sample(ts=now, power_w=412.0, import_kwh=1.0, export_kwh=0.0)
        await store_latest(redis, DEVICE, latest)  # as ingest writes it
        await redis.aclose()

        def start(env: dict[str, str], script: str | None = None) -> ServiceProcess:
            port = free_port()
            base = {"DATABASE_URL": url, "READ_TOKENS": f"{TOKEN}:*", "LOG_LEVEL": "WARNING"}
            proc = ServiceProcess(
                [script or console_script("p1-query"), "serve", "--port", str(port)], {**base, **env}, port
            )
            procs.append(proc.start())
            return proc

        # Uncached: no Redis and no realtime memo, so every answer comes from PostgreSQL.
        # Dynamic price sums are settled by measure_costs, between its two measurements, not by the server.
        uncached = start({"REALTIME_MEMO_S": "0", "PRICE_SUMS_INTERVAL_S": "0"})
        if args.costs_only:
            cost_goals = await measure_costs(uncached.base_url, url, now, args.n)
            print()
            for goal, ok in cost_goals:
                print(f"{'PASS' if ok else 'MISS'}  {goal}")
            return 0
        baseline = None
        if args.baseline:  # the other tree's packages first on the path (the console script is ours)
            path = os.pathsep.join(os.path.join(args.baseline, p) for p in _SOURCES)
            baseline = start({"REALTIME_MEMO_S": "0", "PYTHONPATH": path})
        cached = start({"REDIS_URL": redis_url})
        # Realtime reading Redis on every request (memo off), for the requests/s comparison as well.
        redis_only = start({"REDIS_URL": redis_url, "REALTIME_MEMO_S": "0"})
        bare_port = free_port()
        bare = ServiceProcess([sys.executable, __file__, "--bare", str(bare_port)], {}, bare_port)
        procs.append(bare.start())

        local_now = now.astimezone()
        year = {"start": (now - timedelta(days=365)).isoformat(), "end": now.isoformat(), "bucket": "1d"}
        month15 = {"start": (now - timedelta(days=30)).isoformat(), "end": now.isoformat(), "bucket": "15m"}
        cases = [
            ("series 1 year by day", f"/v1/devices/{DEVICE}/series", year),
            ("series 30 days by 15 min", f"/v1/devices/{DEVICE}/series", month15),
            ("capacity (12 months)", f"/v1/devices/{DEVICE}/capacity", {"month": f"{local_now:%Y-%m}"}),
            ("realtime", f"/v1/devices/{DEVICE}/realtime", {}),
        ]
        if args.capacity_only:
            cases = [case for case in cases if case[0].startswith("capacity")]
        modes = [("uncached", uncached), ("cached", cached)]
        if args.baseline_query:
            modes.append(("baseline", start({"REALTIME_MEMO_S": "0"}, args.baseline_query)))
        cols = ("server p50", "server p95", "client p50", "client p95")
        print(f"\n{'operation':28} {'mode':9} " + " ".join(f"{c:>11}" for c in cols))
        results: dict[tuple[str, str], float] = {}
        for name, path, params in cases:
            for mode, proc in modes:
                if name == "realtime" and mode == "baseline":
                    continue
                if name == "realtime":
                    mode = "postgres" if mode == "uncached" else "memo"
                server, client = latencies(proc.base_url, path, params, args.n)
                results[(name, mode)] = pct(server, 0.95)
                print(
                    f"{name:28} {mode:9} {pct(server, 0.5):9.2f}ms {pct(server, 0.95):9.2f}ms "
                    f"{pct(client, 0.5):9.2f}ms {pct(client, 0.95):9.2f}ms"
                )

        if baseline is not None:
            print(f"\nuncached, this tree vs --baseline {args.baseline}, requests alternating (server time):")
            for name, path, params in cases[:3]:
                mine, theirs = versus(uncached.base_url, baseline.base_url, path, params, args.n)
                a50, a95, b50, b95 = pct(mine, 0.5), pct(mine, 0.95), pct(theirs, 0.5), pct(theirs, 0.95)
                print(
                    f"{name:28} p50 {a50:7.2f}ms vs {b50:7.2f}ms ({b50 / a50:.2f}× faster)   "
                    f"p95 {a95:7.2f}ms vs {b95:7.2f}ms ({b95 / a95:.2f}× faster)"
                )

        if ("capacity (12 months)", "baseline") in results:
            now_ms = results[("capacity (12 months)", "uncached")]
            before_ms = results[("capacity (12 months)", "baseline")]
            ratio = now_ms / before_ms
            print(f"capacity uncached p95: {now_ms:.2f} ms vs baseline {before_ms:.2f} ms: {ratio:.3f} ×")
        if args.capacity_only:
            ok = results[("capacity (12 months)", "uncached")] <= 20.0
            print(f"\n{'PASS' if ok else 'MISS'}  capacity over 12 months uncached p95 ≤ 20 ms")
            return 0
        realtime_path = f"/v1/devices/{DEVICE}/realtime"
        server, client = latencies(redis_only.base_url, realtime_path, {}, args.n)
        print(
            f"{'realtime':28} {'redis':9} {pct(server, 0.5):9.2f}ms {pct(server, 0.95):9.2f}ms "
            f"{pct(client, 0.5):9.2f}ms {pct(client, 0.95):9.2f}ms   (memo off: Redis GET per request)"
        )
        got = await compare_rps(
            {
                "realtime": (cached.port, realtime_path, AUTH),
                "realtime_redis": (redis_only.port, realtime_path, AUTH),
                "bare": (bare.port, "/constant", {}),
            },
            args.conns,
            args.seconds,
            args.rounds,
        )
        rt, rt_redis, base_rps = got["realtime"], got["realtime_redis"], got["bare"]
        how = f"median of {args.rounds} alternating rounds of {args.seconds:.0f} s, {args.conns} connections"
        print(f"\nrequests/s, {how}:")
        print(f"realtime (memo)  {rt:8.0f} req/s   bare FastAPI constant {base_rps:8.0f} req/s")
        print(f"ratio realtime / bare: {rt / base_rps:.2f}")
        ratio_redis = rt_redis / base_rps
        print(
            f"realtime, memo off (a Redis GET per request): {rt_redis:8.0f} req/s, {ratio_redis:.2f} × bare"
        )

        await in_process(url, redis_url, cases, args.n)
        cost_goals = await measure_costs(uncached.base_url, url, now, args.n)

        load1, load5, _ = os.getloadavg()
        print(f"machine: {os.cpu_count()} cores, load average {load1:.1f} (1 min), {load5:.1f} (5 min)")
        goals = [
            ("year by day uncached p95 ≤ 20 ms", results[("series 1 year by day", "uncached")] <= 20.0),
            (
                "30 days by 15 min uncached p95 ≤ 15 ms",
                results[("series 30 days by 15 min", "uncached")] <= 15.0,
            ),
            (
                "cached hits p95 ≤ 2 ms",
                all(v <= 2.0 for (n, m), v in results.items() if m == "cached" and n != "realtime"),
            ),
            ("realtime ≥ 0.7 × bare req/s", rt >= 0.7 * base_rps),
            (
                "capacity over 12 months uncached p95 ≤ 20 ms",
                results[("capacity (12 months)", "uncached")] <= 20.0,
            ),
        ]
        goals += cost_goals
        print()
        for goal, ok in goals:
            print(f"{'PASS' if ok else 'MISS'}  {goal}")
        return 0
    finally:
        for proc in procs:
            proc.stop()
        await drop_database(url)


if __name__ == "__main__":
    sys.exit(main())
