"""Edge benchmark (issue 5): drain a 7-day backlog into a real ingest; steady 1 Hz polling cost.

1. Backlog: a spool holding 7 days at 1 Hz (604,800 realistic three-phase readings, every field the
   simulator's meter gives) is drained by a real ``p1-edge run`` into a real ``p1-ingest serve`` on a
   fresh, migrated database. Reported: seconds from the edge's start to an empty spool, readings/s,
   the edge's peak RSS (VmHWM). Goal: under 30 s. The same backlog is also drained into a stub that
   answers 200 at once: the edge's own ceiling, to tell the edge's cost from ingest's.
2. Steady: ``p1-edge run`` polls ``p1-edge simulate`` at 1 Hz and uploads to the same ingest for
   ``--steady-s`` seconds. Reported: the edge's CPU seconds per hour (user + system, from /proc),
   % of one core and RSS. Goals: under 1 % of one core, under 50 MB RSS.
3. ``--sync-cost`` (only this): the steady run once per ``SPOOL_SYNC`` (normal, full) into a stub ingest:
   CPU at 1 Hz, bytes the edge made the kernel write to the disk (/proc/<pid>/io ``write_bytes``) and
   fsync/fdatasync calls per second (counted by ``strace -f`` attached afterwards for up to 30 s, so
   the CPU figure is measured without it).

Only 127.0.0.1 is contacted. Every loop is bounded by a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from p1_contracts.models import Meter, SampleBatch
from p1_edge.spool import Spool
from p1_edge.spoolfile import SpoolStats, stats_in_file
from p1_schema.migrate import migrate
from p1_servicekit.testing import ServiceProcess, console_script, free_port, port_open, wait_until
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

DEVICE = "bench-edge"
NO_STATS = SpoolStats(0, None, 0, 0, None, None, None)  # of a spool not created yet
TOKEN = "bench-edge-token"
TICK = os.sysconf("SC_CLK_TCK")


def fill_spool(path: Path, n: int) -> float:
    """n realistic readings (3-phase, two tariffs, voltages, currents, Belgian peak fields, gas and
    water; counters integrate the power), one per second, ending an hour ago."""
    t0 = time.perf_counter()
    rnd = random.Random(7)
    start = int(time.time()) - 3600 - n
    imp, exp, gas, water = [10_830_511.0, 2_948_827.0], [1_285_951.0, 2_876_510.0], 2569.646, 123.456
    meter = Meter(serial="4E47475955", model="ISKRA  2M550T-101", protocol_version=50)
    spool = Spool(path, n + 1)
    rows: list[tuple[float, str]] = []
    for i in range(n):
        ts = start + i
        stamp = datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
        l1, l2, l3 = rnd.randint(-3000, 2500), rnd.randint(0, 3500), rnd.randint(0, 800)
        p = l1 + l2 + l3
        tariff = 1 + (ts // 3600) % 2
        if p >= 0:
            imp[tariff - 1] += p / 3600
        else:
            exp[tariff - 1] -= p / 3600
        if i % 300 == 0:
            gas += 0.012
            water += 0.004
        gas_ts = datetime.fromtimestamp(ts - ts % 300, UTC).isoformat()
        rows.append(
            (
                float(ts),
                f'{{"ts":"{stamp}","power_w":{p}.0,'
                f'"import_kwh":{round((imp[0] + imp[1]) / 1000, 3)},'
                f'"export_kwh":{round((exp[0] + exp[1]) / 1000, 3)},'
                f'"import_t1_kwh":{round(imp[0] / 1000, 3)},"import_t2_kwh":{round(imp[1] / 1000, 3)},'
                f'"export_t1_kwh":{round(exp[0] / 1000, 3)},"export_t2_kwh":{round(exp[1] / 1000, 3)},'
                f'"tariff":{tariff},"power_l1_w":{l1}.0,"power_l2_w":{l2}.0,"power_l3_w":{l3}.0,'
                f'"voltage_l1_v":230.1,"voltage_l2_v":229.8,"voltage_l3_v":231.0,'
                f'"current_l1_a":{round(l1 / 230, 2)},"current_l2_a":{round(l2 / 230, 2)},'
                f'"current_l3_a":{round(l3 / 230, 2)},"avg_power_15m_w":{abs(p) / 2},'
                f'"month_peak_w":4321.0,"month_peak_ts":"{gas_ts}",'
                f'"gas_m3":{round(gas, 3)},"gas_ts":"{gas_ts}",'
                f'"water_m3":{round(water, 3)},"water_ts":"{gas_ts}"}}',
            )
        )
        if len(rows) == 50_000:
            spool.append_json(DEVICE, meter, rows)
            rows = []
    if rows:
        spool.append_json(DEVICE, meter, rows)
    # one reading through the contract model, so the fill cannot drift from it silently
    first = spool.peek_gzip(1)
    assert first is not None
    SampleBatch.model_validate_json(gzip.decompress(first.payload))
    spool.close()
    return time.perf_counter() - t0


def edge_only_venv() -> str:
    """The edge as a Pi installs it: p1-edge and its dependencies only (uv, from uv.lock).

    The workspace venv also holds click/rich (which httpx then imports) and the services' packages,
    which would inflate the edge's RSS. Falls back to the workspace venv when uv is missing.
    """
    root = Path(__file__).resolve().parent.parent
    venv = root / ".bench" / "edge-venv"
    # where `make setup` puts it when it is not on PATH (pip install --user)
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin"))
    if uv is None:
        print("uv not found: measuring the edge in the workspace venv (RSS overstated)")
        return console_script("p1-edge")
    subprocess.run(
        # --reinstall-package: a non-editable install is a copy; measure the current source
        [
            uv,
            "sync",
            "--frozen",
            "--no-dev",
            "--package",
            "p1-edge",
            "--no-editable",
            "-q",
            "--reinstall-package",
            "p1-edge",
            "--reinstall-package",
            "p1-config",
        ],
        cwd=root,
        # bytecode compiled at install, as in the edge's image: no compile() at every start
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_COMPILE_BYTECODE": "1"},
        check=True,
    )
    return str(venv / "bin" / "p1-edge")


def spool_depth(http: httpx.Client, metrics_url: str) -> int | None:
    """``p1_edge_spool_depth`` from the edge's /metrics; None until it answers."""
    try:
        text = http.get(metrics_url, timeout=2).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith("p1_edge_spool_depth "):
            return int(float(line.split()[1]))
    return None


def proc_status(pid: int, key: str) -> int:
    """A kB value from /proc/<pid>/status (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def edge_env(
    spool: Path, ingest_url: str, meter: str, device: str, token: str, **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        "P1_HOST": meter,
        "INGEST_URL": ingest_url,
        "DEVICE_TOKEN": token,
        "DEVICE_ID": device,
        "SPOOL_PATH": str(spool),
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(free_port()),
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class NullIngest:
    """Answers every POST with 200 at once, in a thread of its own: the edge's own ceiling."""

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> NullIngest:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        from p1_edge.httpserver import HttpServer, Request, Response

        async def answer(request: Request) -> Response:
            return Response(200, b'{"accepted":0,"duplicates":0}')

        loop = asyncio.new_event_loop()
        self._loop = loop
        server = HttpServer(answer)
        loop.run_until_complete(server.start())
        self.port = server.port
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(server.close())
        loop.close()


def drain(
    edge_bin: str, spool: Path, ingest_url: str, batch: int, device: str = DEVICE
) -> tuple[float, int, float]:
    env = edge_env(spool, ingest_url, f"127.0.0.1:{free_port()}", device, TOKEN, UPLOAD_BATCH_MAX=str(batch))
    metrics = f"http://127.0.0.1:{env['METRICS_PORT']}/metrics"
    log = spool.with_suffix(".log")
    t0 = time.perf_counter()
    with log.open("wb") as out:
        edge = subprocess.Popen([edge_bin, "run"], env=env, stdout=out, stderr=out)
    peak, cpu = [0], 0.0
    try:
        # The edge's own depth gauge (an in-memory count), not COUNT(*) on the file: scanning a
        # 400 MB table every 50 ms would steal a core from the edge and ingest being measured.
        # One client for the whole watch: httpx.get() would build a client (and load the CA
        # bundle) per call, stealing CPU and the GIL from the stub ingest in this process.
        with httpx.Client() as http:

            def drained() -> bool:
                assert edge.poll() is None, log.read_text()
                peak[0] = max(peak[0], proc_status(edge.pid, "VmHWM"))
                return spool_depth(http, metrics) == 0

            wait_until(drained, 600, "the backlog to drain")
        seconds = time.perf_counter() - t0
        peak[0] = max(peak[0], proc_status(edge.pid, "VmHWM"))
        cpu = cpu_seconds(edge.pid)
    finally:
        stop(edge)
    return seconds, peak[0], cpu


@dataclass(frozen=True)
class Steady:
    cpu_s_per_hour: float
    rss_kb: int
    hwm_kb: int
    disk_write_kb_s: float
    fsyncs_s: float | None  # None: not counted (no strace, or not asked)


def io_write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def count_fsyncs(pid: int, seconds: float) -> float | None:
    """fsync/fdatasync calls per second of ``pid`` (all threads), by strace; None without strace."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        tracer = subprocess.Popen(
            [strace, "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", out.name, "-p", str(pid)],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(seconds)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(10)
        calls = [line for line in Path(out.name).read_text().splitlines() if "sync(" in line]
    return len(calls) / seconds


def steady(
    edge_bin: str, tmp: Path, ingest_url: str, seconds: float, *, fsyncs: bool = False, **extra: str
) -> Steady:
    sim_port = free_port()
    sim = subprocess.Popen(
        [console_script("p1-edge"), "simulate", "--port", str(sim_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    spool = tmp / "steady.sqlite"
    edge: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: port_open(sim_port), 30, "the simulator")
        meter = f"127.0.0.1:{sim_port}"
        env = edge_env(spool, ingest_url, meter, DEVICE + "-steady", TOKEN + "-s", **extra)
        edge = subprocess.Popen([edge_bin, "run"], env=env)
        wait_until(lambda: (stats_in_file(spool) or NO_STATS).depth >= 1, 60, "the edge's first reading")
        time.sleep(5)  # warm-up: imports and first connections are not the steady state
        cpu0, io0, t0 = cpu_seconds(edge.pid), io_write_bytes(edge.pid), time.monotonic()
        time.sleep(seconds)
        cpu, io = cpu_seconds(edge.pid) - cpu0, io_write_bytes(edge.pid) - io0
        elapsed = time.monotonic() - t0
        rss = proc_status(edge.pid, "VmRSS")
        hwm = proc_status(edge.pid, "VmHWM")
        synced = count_fsyncs(edge.pid, min(seconds, 30.0)) if fsyncs else None
        return Steady(cpu / elapsed * 3600, rss, hwm, io / 1024 / elapsed, synced)
    finally:
        if edge is not None:
            stop(edge)
        stop(sim)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--readings", type=int, default=7 * 86400)
    ap.add_argument("--batch", type=int, default=5000, help="UPLOAD_BATCH_MAX for the drain")
    ap.add_argument("--steady-s", type=float, default=120.0)
    ap.add_argument("--upload-interval", default=None, help="UPLOAD_INTERVAL_S for the steady run")
    ap.add_argument("--sync-cost", action="store_true", help="only: steady 1 Hz per SPOOL_SYNC value")
    args = ap.parse_args()

    edge_bin = edge_only_venv()
    if args.sync_cost:
        return sync_cost(edge_bin, args.steady_s)
    url = await create_database(pg_server_url(), "p1_bench_edge")
    try:
        await migrate(url)
        port = free_port()
        ingest = ServiceProcess(
            [console_script("p1-ingest"), "serve", "--port", str(port)],
            {
                "DATABASE_URL": url,
                "DEVICE_TOKENS": f"{TOKEN}:{DEVICE},{TOKEN}-s:{DEVICE}-steady",
                "LOG_LEVEL": "WARNING",
            },
            port,
        ).start()
        try:
            with tempfile.TemporaryDirectory(prefix="p1-bench-edge-") as tmp:
                spool, spare = Path(tmp) / "backlog.sqlite", Path(tmp) / "backlog-copy.sqlite"
                fill_s = fill_spool(spool, args.readings)
                size_mb = spool.stat().st_size / 1e6
                print(f"backlog: {args.readings:,} readings spooled in {fill_s:.1f} s ({size_mb:.0f} MB)")
                shutil.copyfile(spool, spare)  # the same backlog again, for the edge-only ceiling
                with NullIngest() as null:
                    null_s, null_peak_kb, null_cpu = drain(
                        edge_bin, spare, f"http://127.0.0.1:{null.port}", args.batch
                    )
                print(f"edge alone (instant ingest): {null_s:.1f} s, CPU {null_cpu:.1f} s", flush=True)
                drain_s, drain_peak_kb, drain_cpu = drain(edge_bin, spool, ingest.base_url, args.batch)
                rate = args.readings / drain_s
                print(
                    f"drained in {drain_s:.1f} s ({rate:,.0f}/s), edge peak RSS "
                    f"{drain_peak_kb / 1024:.1f} MB, edge CPU {drain_cpu:.1f} s",
                    flush=True,
                )
                rows = await _count(url, DEVICE)
                assert rows == args.readings, f"ingest stored {rows} of {args.readings}"
                extra = {"UPLOAD_INTERVAL_S": args.upload_interval} if args.upload_interval else {}
                run = steady(edge_bin, Path(tmp), ingest.base_url, args.steady_s, **extra)
                cpu_h, rss_kb, hwm_kb = run.cpu_s_per_hour, run.rss_kb, run.hwm_kb
        finally:
            ingest.stop()
    finally:
        await drop_database(url)

    core = cpu_h / 3600 * 100
    table = [
        ("7-day backlog drain", f"{drain_s:.1f} s", "< 30 s", drain_s / 30),
        ("  readings/s", f"{rate:,.0f}", "> 20,160", 20_160 / rate),
        ("  edge peak RSS", f"{drain_peak_kb / 1024:.1f} MB", "(none)", 0.0),
        ("  edge CPU share", f"{drain_cpu:.1f} s of {drain_s:.1f} s", "(none)", 0.0),
        (
            "edge alone (stub)",
            f"{null_s:.1f} s ({args.readings / null_s:,.0f}/s)",
            "< 30 s",
            null_s / 30,
        ),
        ("  its peak RSS", f"{null_peak_kb / 1024:.1f} MB", "(none)", 0.0),
        ("steady 1 Hz: CPU", f"{cpu_h:.1f} s/hour ({core:.2f} % of a core)", "< 1 %", core / 1),
        ("  edge RSS", f"{rss_kb / 1024:.1f} MB (peak {hwm_kb / 1024:.1f})", "< 50 MB", rss_kb / 1024 / 50),
    ]
    print(f"\n{'measure':<22} {'value':<34} {'goal':<10} ratio to goal (≤ 1 is met)")
    for name, value, goal, ratio in table:
        print(f"{name:<22} {value:<34} {goal:<10} {ratio:.2f}")
    return 0 if all(r <= 1 for *_, r in table) else 1


def sync_cost(edge_bin: str, seconds: float) -> int:
    """The steady 1 Hz run once per SPOOL_SYNC into a stub ingest; prints one line each."""
    print(f"\n{'SPOOL_SYNC':<11} {'CPU s/hour':>10} {'% core':>7} {'disk kB/s':>9} {'fsyncs/s':>8}")
    on_disk = Path(__file__).resolve().parent.parent / ".bench"  # the repo's disk, not a tmpfs
    with NullIngest() as null, tempfile.TemporaryDirectory(prefix="p1-bench-sync-", dir=on_disk) as tmp:
        for mode in ("normal", "full"):
            run = steady(
                edge_bin,
                Path(tmp) / mode,
                f"http://127.0.0.1:{null.port}",
                seconds,
                fsyncs=True,
                SPOOL_SYNC=mode,
            )
            fsyncs = "n/a" if run.fsyncs_s is None else f"{run.fsyncs_s:.2f}"
            print(
                f"{mode:<11} {run.cpu_s_per_hour:>10.1f} {run.cpu_s_per_hour / 36:>7.2f} "
                f"{run.disk_write_kb_s:>9.1f} {fsyncs:>8}",
                flush=True,
            )
    return 0


async def _count(url: str, device: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM samples WHERE device_id = $1", device))
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
