"""Notify benchmark (issue 16 §6): ``p1-notify run`` following 2,000 devices that each upload every 5 s.

Readings reach notify as ingest's do after its commit: ``p1_schema.redis.store_latest`` (the same Lua
SET-if-newer + PUBLISH ingest runs) on the real Redis, 400 a second, each device at its own phase of the
5 s. Their timestamps run with the wall clock from 2026-11-04 10:00:30Z (a quarter of a fresh database,
so each device's first reading also costs notify its inputs' read from PostgreSQL, as at a real start).
A tenth of the devices switch on 7 kW between 10 and 30 s into the run: each is warned about once
(``p1_peakguard``'s rule: held 60 s), through Apprise's ``json://`` to a receiver on 127.0.0.1.

Reported:
- notify's CPU (user + system, /proc) as a share of one core over the steady part (after its first 20 s)
  and over the whole run, and its RSS at the end;
- the delay from the publish of the reading that fired each warning (found by running p1_peakguard's own
  functions over the device's readings) to the warning's arrival at the receiver: p50, p99, max;
- baseline, same run, same load: a bare subscriber (redis-py, the same channels, ``decode_latest`` of each
  message, nothing else): notify's CPU as a multiple of merely receiving the readings.

Goals: p99 ≤ 2 s, ≤ 25 % of one core. Only 127.0.0.1 is contacted; every loop is bounded by a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

from p1_contracts.models import Sample
from p1_peakguard import warning
from p1_peakguard.quarter import Reading, running_quarter
from p1_schema.migrate import migrate
from p1_schema.redis import store_latest
from p1_servicekit.testing import ServiceProcess, Webhook, console_script, free_port, wait_until
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

T0 = datetime(2026, 11, 4, 10, 0, 30, tzinfo=UTC)
PERIOD_S = 5.0
BASE_W, LOAD_W = 300.0, 7000.0
TICK = os.sysconf("SC_CLK_TCK")
FLOOR_SCRIPT = """
import asyncio, sys
from redis.asyncio import Redis
from p1_schema.redis import decode_latest
async def main():
    client = Redis.from_url(sys.argv[1])
    pubsub = client.pubsub()
    devices = sys.argv[2].split(",")
    for i in range(0, len(devices), 500):
        await pubsub.subscribe(*("p1:live:" + d for d in devices[i:i + 500]))
    print("subscribed", flush=True)
    while True:
        m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if m is not None:
            decode_latest(m["data"])
asyncio.run(main())
"""


@dataclass
class Device:
    device_id: str
    phase_s: float
    on_at_s: float | None  # run seconds when the 7 kW load starts (None: never)
    kwh: float = 1000.0
    published: list[tuple[datetime, float, float, float]] = field(default_factory=list)  # ts, kwh, w, at

    def power(self, t: float) -> float:
        return LOAD_W if self.on_at_s is not None and t >= self.on_at_s else BASE_W

    def trigger(self) -> float | None:
        """The publish time of the reading that fires the warning (p1_peakguard's rule, as notify runs
        it: start counter = the quarter's first reading's, no month peak yet), or None."""
        guard = warning.Guard()
        start = self.published[0][1] if self.published else 0.0
        for ts, kwh, w, at in self.published:
            state = running_quarter(
                start_kwh=start,
                newest=Reading(ts, kwh, w),
                month_peak_kw=None,
                cap_kw=None,
                price_eur_per_kw_year=53.25,
            )
            guard, warn = warning.step(guard, state)
            if warn:
                return at
        return None


def receiver() -> tuple[Webhook, list[tuple[float, str]]]:
    got: list[tuple[float, str]] = []

    def record(_path: str, raw: bytes) -> None:
        got.append((time.time(), str(json.loads(raw).get("title", ""))))

    return Webhook(record), got


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main_pid(proc: ServiceProcess) -> int:
    assert proc.proc is not None
    return proc.proc.pid


async def publish(redis_url: str, devices: list[Device], seconds: float) -> float:
    """Each device's reading every PERIOD_S at its phase, as ingest publishes after its commit; returns
    the wall time the run started."""
    client = Redis.from_url(redis_url)
    wall0 = time.time()
    schedule = sorted(
        (d.phase_s + k * PERIOD_S, i) for i, d in enumerate(devices) for k in range(int(seconds / PERIOD_S))
    )
    pos = 0
    deadline = wall0 + seconds + 30
    while pos < len(schedule) and time.time() < deadline:
        now = time.time() - wall0
        due = []
        while pos < len(schedule) and schedule[pos][0] <= now:
            due.append(schedule[pos])
            pos += 1
        if due:
            pipe = client.pipeline(transaction=False)
            for t, i in due:
                d = devices[i]
                d.kwh += d.power(t) / 1000 * PERIOD_S / 3600
                ts = T0 + timedelta(seconds=round(t, 3))
                sample = Sample(ts=ts, power_w=d.power(t), import_kwh=round(d.kwh, 6), export_kwh=0.0)
                await store_latest(pipe, d.device_id, sample)
            await pipe.execute()
            at = time.time()
            for t, i in due:
                d = devices[i]
                d.published.append((T0 + timedelta(seconds=round(t, 3)), round(d.kwh, 6), d.power(t), at))
        await asyncio.sleep(0.02)
    await client.aclose()
    return wall0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> int:
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    flush = Redis.from_url(redis_url)
    await flush.flushdb()
    await flush.aclose()
    n = args.devices
    devices = [
        Device(f"bench-n-{i:05d}", (i * PERIOD_S / n), (10 + (i % 21)) if i % 10 == 0 else None)
        for i in range(n)
    ]
    ids = ",".join(d.device_id for d in devices)
    tmp = Path(tempfile.mkdtemp(prefix="bench-notify-"))

    # 1. the baseline: a bare subscriber, the same load, a shorter run
    floor = subprocess.Popen(  # noqa: ASYNC220 (started once, before anything runs on the loop)
        [sys.executable, "-c", FLOOR_SCRIPT, redis_url, ids], stdout=subprocess.PIPE, text=True
    )
    assert floor.stdout is not None
    floor.stdout.readline()
    c0 = cpu_s(floor.pid)
    await publish(redis_url, [Device(d.device_id, d.phase_s, None) for d in devices], args.floor_s)
    floor_cpu = (cpu_s(floor.pid) - c0) / args.floor_s
    floor.terminate()
    floor.wait(10)
    flush = Redis.from_url(redis_url)
    await flush.flushdb()
    await flush.aclose()

    # 2. notify
    database_url = await create_database(pg_server_url(), "p1_bench_notify")
    hook, got = receiver()
    port = hook.port
    try:
        await migrate(database_url)
        config = tmp / "notify.yaml"
        config.write_text(
            f"defaults:\n  urls: ['json://127.0.0.1:{port}/hook']\ndevices:\n"
            + "".join(f"  {d.device_id}:\n" for d in devices)
        )
        notify_port = free_port()
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "NOTIFY_CONFIG": str(config),
            "LOG_LEVEL": "WARNING",
        }
        notify = ServiceProcess(
            [console_script("p1-notify"), "run", "--port", str(notify_port)],
            env,
            notify_port,
            log_path=tmp / "notify.log",
        ).start(60)
        pid = main_pid(notify)
        c_start = cpu_s(pid)
        marks: dict[str, float] = {}

        async def mark_steady() -> None:
            await asyncio.sleep(20)
            marks["cpu"], marks["at"] = cpu_s(pid), time.time()

        marker = asyncio.create_task(mark_steady())
        wall0 = await publish(redis_url, devices, args.seconds)
        await marker
        wall_end = time.time()
        c_end = cpu_s(pid)
        rss = rss_mb(pid)
        warned = [d for d in devices if d.on_at_s is not None]
        wait_until(lambda: len(got) >= len(warned), 30, "every warning", step_s=0.2)
        notify.stop()
    finally:
        hook.stop()
        await drop_database(database_url)

    arrivals = sorted(t for t, title in got if "warning" in title.lower())
    triggers = sorted(t for d in warned if (t := d.trigger()) is not None)
    # Warnings of different devices are alike; pair the k-th trigger with the k-th arrival (both in time
    # order; a delay never reorders by more than the spread between triggers, which is seconds).
    delays = [a - t for a, t in zip(arrivals, triggers, strict=False)]
    whole = (c_end - c_start) / (wall_end - wall0)
    steady = (c_end - marks["cpu"]) / (wall_end - marks["at"])
    print(
        f"devices {n}, readings/s {n / PERIOD_S:.0f}, run {args.seconds:.0f} s,"
        f" warnings {len(arrivals)}/{len(warned)}"
    )
    print(
        f"notify CPU: steady {steady:.1%} of one core, whole run {whole:.1%} (goal ≤ 25 %); RSS {rss:.0f} MB"
    )
    print(
        f"baseline (bare subscriber, decode only): {floor_cpu:.1%} of one core"
        f" → notify steady = {steady / floor_cpu:.1f}× the baseline"
    )
    if delays:
        print(
            f"publish → warning at the receiver: p50 {percentile(delays, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(delays, 0.99) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms (goal p99 ≤ 2 s)"
        )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=110.0, help="the notify run (the warnings need ≥ 90 s)")
    ap.add_argument("--floor-s", type=float, default=30.0, help="the baseline's run")
    ap.add_argument("--redis-db", type=int, default=int(os.environ.get("TEST_REDIS_DB", "9")))
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
