"""`scripts/demo.py` (what `make demo` runs) on free ports, on a database of its own: a year backfilled
through ingest (energies and peaks compared with the profile by hand), live readings after it, exit 0,
nothing left behind; a second run continues the same meter; `--reset` forgets it all."""

import asyncio
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import redis

from p1_edge.simulator.history import COARSE_STEP_S
from p1_edge.simulator.peaks import QUARTER_S
from p1_edge.simulator.profiles import PROFILES
from p1_servicekit.testing import (
    ServiceProcess,
    console_script,
    free_port,
    port_open,
    redis_server,
    wait_until,
)
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Europe/Brussels")
FAMILY = PROFILES["family"]
LIVE = re.compile(r"^live (\S+)\s+power\s+(-?\d+) W\s+import (\d+\.\d{3}) kWh", re.MULTILINE)
BACKFILL = re.compile(
    r"backfill: ([\d,]+) readings \(([^:]*): [^)]*\) through ingest in ([\d.]+) s, (\S+) … (\S+)"
)
READ = {"Authorization": "Bearer demo-read"}


def processes_mentioning(needles: list[str]) -> list[str]:
    """Running processes whose command line or environment contains one of ``needles``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        text = f"{cmdline} {environ}"
        if any(needle in text for needle in needles):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


@dataclass
class Demo:
    home: Path
    env: dict[str, str]

    def run(self, duration_s: float) -> tuple[str, dict[str, int]]:
        """One `make demo` for ``duration_s`` of live readings; asserts it exited 0 and left nothing."""
        ports = {name: free_port() for name in ("sim", "ingest", "query", "edge-metrics", "notify")}
        argv = [sys.executable, str(ROOT / "scripts/demo.py"), "--duration", str(duration_s)]
        argv += ["--dir", str(self.home), *(a for n, p in ports.items() for a in (f"--{n}-port", str(p)))]
        result = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=240)
        out = result.stdout
        assert result.returncode == 0, out + result.stderr
        assert "stopped; nothing left running." in out
        for port in ports.values():
            assert not port_open(port), f"port {port} still open after the demo"
        needles = [f"--port {ports[p]}" for p in ("sim", "ingest", "query", "notify")]
        needles.append(f"METRICS_PORT={ports['edge-metrics']}")
        assert processes_mentioning(needles) == []
        return out, ports


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Demo]:
    """The demo on a database of its own and the tests' Redis database, in a home of its own (the
    TimescaleDB lane's server when the lane runs)."""
    url = asyncio.run(create_database(pg_server_url(), "p1_demo_test"))
    try:
        yield Demo(
            tmp_path_factory.mktemp("demo-home"), {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url}
        )
    finally:
        asyncio.run(drop_database(url))


@pytest.fixture(scope="module")
def first_run(demo: Demo) -> str:
    out, ports = demo.run(15)
    assert f"http://127.0.0.1:{ports['query']}" in out  # the banner with the URLs and the read token
    assert "(read token demo-read)" in out
    dashboard = rf"dashboard +http://127\.0\.0\.1:{ports['query']}/ .*sign in with the read token demo-read\)"
    assert re.search(dashboard, out), "the banner names the dashboard's URL and its read token"
    return out


def test_the_demo_loads_its_tariff_plan(demo: Demo, first_run: str) -> None:
    """deploy/tariffs/flanders-fixed.yaml (issue 15 §5): two plans for every device, 2025 and 2026."""
    assert "2 plan(s) loaded from" in first_run

    async def plans() -> list[tuple[str, str]]:
        conn = await asyncpg.connect(demo.env["DATABASE_URL"])
        try:
            rows = await conn.fetch("SELECT name, device_id FROM tariff_plans ORDER BY starts_at")
        finally:
            await conn.close()
        return [(r["name"], r["device_id"]) for r in rows]

    assert asyncio.run(plans()) == [("fixed-2025", "*"), ("fixed-2026", "*")]


@pytest.fixture(scope="module")
def query(demo: Demo, first_run: str) -> Iterator[httpx.Client]:
    """A query process on what the demo left in its database."""
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)],
        {"DATABASE_URL": demo.env["DATABASE_URL"], "READ_TOKENS": "demo-read:demo"},
        port,
    ).start()
    try:
        with httpx.Client(base_url=proc.base_url, headers=READ, timeout=30) as client:
            yield client
    finally:
        proc.stop()


def local_midnight(days_ago: int) -> datetime:
    return (datetime.now(TZ) - timedelta(days=days_ago)).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(months_ago: int) -> datetime:
    now = datetime.now(TZ)
    index = now.year * 12 + now.month - 1 - months_ago
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=TZ)


def slot_watts(start: datetime, end: datetime) -> list[int]:
    """The profile's offtake in each five-minute slot of [start, end), taken in the slot's middle: what
    the backfill integrates (p1_edge.simulator.history)."""
    first, last = int(start.timestamp()), int(end.timestamp())
    return [
        max(FAMILY.load(datetime.fromtimestamp(s + COARSE_STEP_S // 2, TZ)).total, 0)
        for s in range(first, last, COARSE_STEP_S)
    ]


@pytest.mark.timeout(300)
def test_the_demo_backfills_a_year_then_shows_live_readings(first_run: str, demo: Demo) -> None:
    (count, what, seconds, first, last) = BACKFILL.search(first_run).groups()  # type: ignore[union-attr]
    assert "a year of the 'family' household" in what
    # a year every five minutes (less the fine part's) and at least the last two hours every second
    assert int(count.replace(",", "")) >= 365 * 288 - 30 + 2 * 3600
    assert datetime.fromisoformat(first) <= datetime.now(TZ) - timedelta(days=364, hours=23)
    print(f"backfill: {count} readings in {seconds} s")  # the figure README quotes (pytest -s)
    lines = LIVE.findall(first_run)
    assert lines, first_run
    assert any(datetime.fromisoformat(ts) > datetime.fromisoformat(last) for ts, _, _ in lines)
    assert all(-50_000 < int(power) < 50_000 for _, power, _ in lines)
    # the command the banner gives for the edge's spool works as printed
    status = next(line.strip() for line in first_run.splitlines() if line.strip().startswith("SPOOL_PATH="))
    assignment, *command = shlex.split(status)
    name, value = assignment.split("=", 1)
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, name: value}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"spool:             {demo.home}/edge-spool.sqlite" in done.stdout


@pytest.mark.timeout(300)
def test_a_year_of_series_and_the_energy_of_a_day_by_hand(query: httpx.Client) -> None:
    start, end = month_start(12), month_start(-1)
    params = {"start": start.isoformat(), "end": end.isoformat(), "bucket": "1mo"}
    r = query.get("/v1/devices/demo/series", params=params)
    assert r.status_code == 200, r.text
    points = r.json()["points"]
    assert len(points) == 13
    assert all(p["samples"] > 0 and p["import_kwh"] > 0 for p in points[1:])  # a year of months with data
    winter = max(points, key=lambda p: p["import_kwh"])
    assert winter["start"][5:7] in {"11", "12", "01", "02"}  # the heat pump's months use the most
    day, next_day = local_midnight(100), local_midnight(99)
    params = {"start": day.isoformat(), "end": next_day.isoformat(), "bucket": "1d"}
    (point,) = query.get("/v1/devices/demo/series", params=params).json()["points"]
    slots = slot_watts(day, next_day)
    by_hand = sum(slots) * COARSE_STEP_S / 3_600_000
    assert point["samples"] == len(slots)  # 288, or 276/300 on a daylight-saving day
    assert abs(point["import_kwh"] - by_hand) <= 0.002  # registers in whole Wh: two roundings


@pytest.mark.timeout(300)
def test_capacity_has_twelve_months_and_a_past_peak_by_hand(query: httpx.Client) -> None:
    now = datetime.now(TZ)
    r = query.get("/v1/devices/demo/capacity", params={"month": f"{now:%Y-%m}"})
    assert r.status_code == 200, r.text
    ledger = r.json()
    assert len(ledger["months"]) == 12
    counted = [m["counted_kw"] for m in ledger["months"]]
    assert ledger["billable_kw"] == pytest.approx(round(sum(counted) / 12, 3), abs=0.001)
    assert ledger["cost_eur_per_year"] == pytest.approx(round(ledger["billable_kw"] * 53.25, 2), abs=0.01)
    start, end = month_start(2), month_start(1)
    slots = slot_watts(start, end)
    per_quarter = QUARTER_S // COARSE_STEP_S
    quarters = [sum(slots[i : i + per_quarter]) / per_quarter for i in range(0, len(slots), per_quarter)]
    past: dict[str, Any] = query.get("/v1/devices/demo/capacity", params={"month": f"{start:%Y-%m}"}).json()
    assert past["peak_kw"] == pytest.approx(max(quarters) / 1000, abs=0.01)  # counters in Wh, × 4
    # the meter's register at the month's last reading (23:55): every quarter but the last was complete
    meter_w = round(max(quarters[:-1]))
    assert past["meter_peak_kw"] == pytest.approx(meter_w / 1000, abs=0.001)
    assert past["meter_peak_differs"] == (abs(past["peak_kw"] - meter_w / 1000) > 0.02 * meter_w / 1000)


@pytest.mark.timeout(300)
def test_a_second_run_continues_the_same_meter_and_reset_forgets_it(demo: Demo, first_run: str) -> None:
    out, _ = demo.run(10)  # a live reading must come back within it, on a loaded CI machine too
    (count, what, *_rest) = BACKFILL.search(out).groups()  # type: ignore[union-attr]
    assert "the stored meter continued" in what
    assert int(count.replace(",", "")) >= 1  # the seconds between the runs
    epochs, flagged, late = asyncio.run(_integrity(demo.env["DATABASE_URL"]))
    assert epochs == 1  # one meter, one counter epoch: no jump between the runs
    assert flagged == 0
    assert late == 0  # every reading arrived in order: the edge's kept ones before the backfill
    argv = [sys.executable, str(ROOT / "scripts/demo.py"), "--reset", "--dir", str(demo.home)]
    reset = subprocess.run(argv, cwd=ROOT, env=demo.env, capture_output=True, text=True, timeout=60)
    assert reset.returncode == 0, reset.stderr
    assert "DATABASE_URL is set: that database is yours, left alone" in reset.stdout
    assert not (demo.home / "edge-spool.sqlite").exists()
    assert not (demo.home / "meter-state.json").exists()
    assert not list(demo.home.glob("*.log"))


async def _integrity(url: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(url)
    try:
        epochs = await conn.fetchval("SELECT count(*) FROM counter_epochs WHERE device_id = 'demo'")
        flagged = await conn.fetchval(
            "SELECT count(*) FROM samples WHERE device_id = 'demo' AND flag IS NOT NULL"
        )
        late = await conn.fetchval("SELECT late_writes FROM devices WHERE device_id = 'demo'")
    finally:
        await conn.close()
    return int(epochs), int(flagged), int(late)


def load_demo_kit() -> Any:
    """scripts/demo_kit.py (the scripts are not a package)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import demo_kit as kit
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return kit


def test_without_urls_the_demo_uses_its_own_redis_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not 0 (a developer's own) and not the tests' (TEST_REDIS_DB, 9 by default)."""
    demo_kit = load_demo_kit()
    monkeypatch.delenv("REDIS_URL", raising=False)
    if not port_open(6379):
        pytest.skip("no local Redis on 6379")
    url, note = demo_kit.find_redis(demo_kit.Processes())
    assert url == "redis://127.0.0.1:6379/15"
    assert demo_kit.DEMO_REDIS_DB not in {0, 9, int(os.environ.get("TEST_REDIS_DB", "9"))}
    assert note == "local Redis, logical database 15"


def test_reset_drops_the_demo_database_its_redis_keys_and_its_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`make demo-reset` without DATABASE_URL / REDIS_URL: the demo's database on the local PostgreSQL and
    its logical database on the local Redis (here a database of the test's name and a redis-server of the
    test's own in the local one's place: no developer's demo is touched)."""
    kit = load_demo_kit()
    if not port_open(5432):
        pytest.skip("needs the local PostgreSQL")
    redis_proc = redis_server().start()
    try:
        wait_until(lambda: port_open(redis_proc.port), 30, "redis-server")
        name = f"p1_demo_reset_{os.getpid()}"
        monkeypatch.setattr(kit, "DEMO_DATABASE", name)
        monkeypatch.setattr(kit, "LOCAL_REDIS_PORT", redis_proc.port)
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.delenv("REDIS_URL", raising=False)
        asyncio.run(kit._ensure_database(kit.LOCAL_PG, name))
        keys = redis.Redis(port=redis_proc.port, db=kit.DEMO_REDIS_DB)
        keys.set("p1:latest:demo", "x")
        for file in (*kit.HOME_FILES, "edge.log"):
            (tmp_path / file).write_text("kept from the last run")
        done = kit.reset(tmp_path)
        assert f"database {name} dropped (local PostgreSQL)" in done
        assert f"local Redis: logical database {kit.DEMO_REDIS_DB} emptied" in done
        assert not asyncio.run(_exists(name))
        assert keys.get("p1:latest:demo") is None
        keys.close()
        assert list(tmp_path.iterdir()) == []
    finally:
        redis_proc.stop()


async def _exists(database: str) -> bool:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database))
    finally:
        await conn.close()
