"""Live streams benchmark: one query process holding many open ``/v1/devices/{id}/live`` streams.

Real parts on loopback: a throwaway PostgreSQL database, Redis, one ingest process and one query process
(one uvicorn worker each). ``--devices`` devices (200) each upload one reading every ``--period`` seconds
(5), staggered evenly: published as ingest publishes after its commit (``p1_schema.redis.store_latest``),
or with ``--via-ingest`` through ingest's ``POST /v1/samples`` (its request and commit then count too).
Each device's first reading goes through ingest, so PostgreSQL holds it (``quarter`` events need it). A
reading's ``ts`` is the client's clock when it is built, so a stream's delivery delay = the time its
``reading`` event is read by the client − ``ts``: the publish, query's fan-out and the client's parse.

Two phases, same run, same processes:

1. baseline: one stream per device (``--devices`` streams) for ``--baseline-seconds``;
2. load: ``--streams`` streams (2,000; ``--streams / --devices`` per device) for ``--seconds``.

Printed: delay p50/p99/max of each phase and their ratio, the query process's RSS idle (after start-up),
with the baseline's streams and with the load's (the maximum seen), events received vs. expected, and
the ``quarter`` events seen. Goal (issue 17): p99 ≤ 1 s and RSS ≤ 300 MB with 2,000 streams.

The stream clients are raw asyncio connections in this process (uvloop), reading lines; only 127.0.0.1 is
contacted; every loop is bounded by a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from redis.asyncio import Redis

from p1_contracts.models import Sample
from p1_schema.redis import store_latest
from p1_servicekit.testing import ServiceProcess, console_script, free_port
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url


def device(i: int) -> str:
    return f"live-{i:04d}"


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Delays:
    # Readings with ts before this are not counted (each stream's first, sent when it opens); set once
    # every stream of the phase is open.
    since: float = float("inf")
    values: list[float] = field(default_factory=list)
    quarters: int = 0
    errors: int = 0
    repeated: int = 0  # a reading not newer than the stream's previous one (must stay 0)
    refusals: Counter[str] = field(default_factory=Counter)  # status lines other than 200

    def summary(self) -> tuple[float, float, float]:
        if not self.values:
            return (float("nan"),) * 3
        ordered = sorted(self.values)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return statistics.median(ordered), p99, ordered[-1]


async def one_stream(port: int, dev: str, token: str, delays: Delays, opened: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    try:
        writer.write(
            (
                f"GET /v1/devices/{dev}/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            delays.errors += 1
            delays.refusals[status.strip().decode(errors="replace")] += 1
            return
        opened.set()
        name = b""
        last = 0.0
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"event: "):
                name = line[7:].strip()
            elif line.startswith(b"data: "):
                if name == b"reading":
                    ts = datetime.fromisoformat(json.loads(line[6:])["ts"]).timestamp()
                    if ts >= delays.since:
                        delays.values.append(time.time() - ts)
                        if ts <= last:
                            delays.repeated += 1
                        last = ts
                elif name == b"quarter":
                    delays.quarters += 1
    except (ConnectionError, OSError) as exc:
        delays.errors += 1
        delays.refusals[type(exc).__name__] += 1
    finally:
        writer.close()


def reading(i: int) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "ts": now.isoformat(),
        "power_w": 300.0 + i,
        "import_kwh": 1000.0 + now.timestamp() / 1e6,
        "export_kwh": 0.0,
    }


async def uploader(
    ingest: httpx.AsyncClient | None,
    redis: Redis,
    devices: int,
    period_s: float,
    until: float,
    sent: list[int],
    calls: list[float],
) -> None:
    """Every device once per period, staggered; each upload is its own task (bounded in number). Through
    ingest (``--via-ingest``), or published as ingest publishes after its commit (``store_latest``)."""
    gate = asyncio.Semaphore(64)
    step = period_s / devices
    start = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()

    async def upload(i: int) -> None:
        async with gate:
            if ingest is None:
                sample = Sample.model_validate_json(json.dumps(reading(i)))
                called = time.time()
                if await store_latest(redis, device(i), sample):
                    sent[0] += 1
                calls.append(time.time() - called)  # Redis's own share of the delay
                return
            r = await ingest.post(
                "/v1/samples",
                json={"device_id": device(i), "samples": [reading(i)]},
                headers={"Authorization": f"Bearer dtok-{i}"},
            )
            if r.status_code == 200:
                sent[0] += 1

    n = 0
    while time.monotonic() < until:
        due = start + n * step
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(upload(n % devices))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    for task in list(tasks):
        await task


async def phase(
    name: str,
    args: argparse.Namespace,
    query: ServiceProcess,
    ingest: httpx.AsyncClient | None,
    redis: Redis,
    per_device: int,
    seconds: float,
) -> tuple[Delays, float, int, int]:
    delays = Delays()
    streams: list[asyncio.Task[None]] = []
    opened: list[asyncio.Event] = []
    for _ in range(per_device):
        for i in range(args.devices):
            event = asyncio.Event()
            opened.append(event)
            streams.append(asyncio.create_task(one_stream(query.port, device(i), f"rtok-{i}", delays, event)))
            if len(streams) % 100 == 0:
                await asyncio.sleep(0.05)  # a ramp, not a SYN flood
    deadline = time.monotonic() + 60
    for e in opened:  # each stream's 200, within one deadline for all
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(e.wait(), max(0.001, deadline - time.monotonic()))
    n_open = sum(e.is_set() for e in opened)
    delays.since = time.time() + 1.0
    peak_rss = rss_mb(query.proc.pid)  # type: ignore[union-attr]
    sent = [0]
    pid = query.proc.pid  # type: ignore[union-attr]
    cpu_query, cpu_self, wall = cpu_s(pid), time.process_time(), time.monotonic()
    until = time.monotonic() + seconds
    calls: list[float] = []
    up = asyncio.create_task(uploader(ingest, redis, args.devices, args.period, until, sent, calls))
    while not up.done():
        peak_rss = max(peak_rss, rss_mb(query.proc.pid))  # type: ignore[union-attr]
        await asyncio.sleep(0.5)
    await up
    wall = time.monotonic() - wall
    busy_query, busy_self = (cpu_s(pid) - cpu_query) / wall, (time.process_time() - cpu_self) / wall
    await asyncio.sleep(2.0)  # the last readings' delivery (bounded: their delay is what is measured)
    peak_rss = max(peak_rss, rss_mb(query.proc.pid))  # type: ignore[union-attr]
    for task in streams:
        task.cancel()
    await asyncio.gather(*streams, return_exceptions=True)
    p50, p99, worst = delays.summary()
    expected = sent[0] * per_device
    print(
        f"{name:>8}: {n_open} streams open ({delays.errors} refused/failed); uploads {sent[0]}, "
        f"reading events {len(delays.values)} of ~{expected} ({delays.repeated} repeated); "
        f"quarter events {delays.quarters}; delay p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {worst * 1000:.0f} ms; query RSS max {peak_rss:.0f} MB; CPU of one core: query "
        f"{busy_query:.0%}, this client {busy_self:.0%}; load average {os.getloadavg()[0]:.1f}"
        + (f"; refusals {dict(delays.refusals)}" if delays.refusals else "")
        + (
            f"; the publish call itself p99 {Delays(values=calls).summary()[1] * 1000:.0f} ms"
            if calls
            else ""
        )
    )
    return delays, peak_rss, n_open, expected


async def run(args: argparse.Namespace) -> int:
    from p1_schema.migrate import migrate

    url = await create_database(pg_server_url(), prefix="p1_bench_live")
    procs: list[ServiceProcess] = []
    redis_url = f"redis://127.0.0.1:6379/{os.environ.get('BENCH_REDIS_DB', '10')}"
    redis = Redis.from_url(redis_url)
    try:
        await migrate(url)
        await redis.flushdb()
        common = {"DATABASE_URL": url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
        ingest_env = {
            **common,
            "DEVICE_TOKENS": ",".join(f"dtok-{i}:{device(i)}" for i in range(args.devices)),
            "RATE_LIMIT_PER_S": "1000",
            "RATE_LIMIT_BURST": "1000",
        }
        query_env = {
            **common,
            "READ_TOKENS": ",".join(f"rtok-{i}:{device(i)}" for i in range(args.devices)),
            "SESSION_SECRET": "bench-session-secret-0123456789abcdef",
        }
        ingest_proc = ServiceProcess(
            [console_script("p1-ingest"), "serve", "--port", str(free_port())], ingest_env, 0
        )
        ingest_proc.port = int(ingest_proc.argv[-1])
        query = ServiceProcess(
            [console_script("p1-query"), "serve", "--port", str(free_port())], query_env, 0
        )
        query.port = int(query.argv[-1])
        procs += [ingest_proc.start(), query.start()]
        async with httpx.AsyncClient(
            base_url=ingest_proc.base_url, timeout=30, limits=httpx.Limits(max_connections=64)
        ) as ingest:
            # A first reading of every device (a stream of a device without one is a 404).
            for i in range(args.devices):
                r = await ingest.post(
                    "/v1/samples",
                    json={"device_id": device(i), "samples": [reading(i)]},
                    headers={"Authorization": f"Bearer dtok-{i}"},
                )
                r.raise_for_status()
            idle_rss = rss_mb(query.proc.pid)  # type: ignore[union-attr]
            print(
                f"query RSS idle {idle_rss:.0f} MB; {args.devices} devices uploading every {args.period:g} s"
            )
            via = ingest if args.via_ingest else None
            base, _, _, _ = await phase("baseline", args, query, via, redis, 1, args.baseline_seconds)
            per_device = max(1, args.streams // args.devices)
            load, load_rss, n_open, _ = await phase("load", args, query, via, redis, per_device, args.seconds)
        b99, l99 = base.summary()[1], load.summary()[1]
        each_kb = (load_rss - idle_rss) * 1024 / max(1, n_open)
        print(
            f"ratios load/baseline: delay p99 {l99 / b99:.2f}×; RSS {load_rss / idle_rss:.2f}× idle "
            f"({load_rss - idle_rss:.0f} MB for {n_open} streams, {each_kb:.0f} KB each)"
        )
        wanted = per_device * args.devices
        ok = l99 <= 1.0 and load_rss <= 300 and n_open == wanted
        print(f"goal (p99 ≤ 1 s, RSS ≤ 300 MB, all {wanted} streams open): {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        for proc in procs:
            proc.stop()
        await redis.aclose()
        await drop_database(url)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument("--period", type=float, default=5.0, help="seconds between a device's uploads")
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of the load phase")
    ap.add_argument("--baseline-seconds", type=float, default=20.0)
    ap.add_argument(
        "--via-ingest",
        action="store_true",
        help="upload through ingest's HTTP API (its request and commit then count in the delay) instead of "
        "publishing as ingest does after its commit",
    )
    args = ap.parse_args()
    import uvloop

    return uvloop.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
