"""The dashboard's test bench: real ingest and query processes, a household's readings sent through
ingest's HTTP path, and Debian's chromium driven by Playwright. Used by the browser tests, `make
screenshots` (tests/web/screenshots.py) and bench/web.py.

Readings come from the edge's simulator (``p1_edge.simulator.history``: the "family" profile, a Belgian
DSMR 5 meter with solar, an EV, a heat pump, gas and water). A window of readings is a piece of that
meter's life; the next window continues its registers from the second it starts (a meter nobody read in
between), so ingest sees one counter epoch and only the windows' seconds are computed and sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import asyncpg
import httpx

import p1_query
from p1_edge.simulator.flavours import flavour
from p1_edge.simulator.history import COARSE_STEP_S, History, Sample, Span
from p1_edge.simulator.profiles import PROFILES
from p1_edge.simulator.registers import Registers
from p1_notify import messages
from p1_servicekit.testing import ServiceProcess, console_script, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

TZ_NAME = "Europe/Brussels"
TZ = ZoneInfo(TZ_NAME)
READ_TOKEN = "web-read-token"
HOME, CABIN = "web-home", "web-cabin"
WRITE_TOKENS = {HOME: "web-write-home", CABIN: "web-write-cabin"}
SESSION_SECRET = "web-tests-session-secret-not-for-production-0123456789"
WEB_DIR = Path(p1_query.__file__).parent / "web"
AXE_JS = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
PLANS = Path(__file__).resolve().parents[2] / "deploy" / "tariffs" / "flanders-fixed.yaml"
BATCH = 5000


@dataclass
class Servers:
    """``p1-ingest serve`` and ``p1-query serve`` on free ports of 127.0.0.1."""

    workdir: Path
    database_url: str
    redis_url: str | None
    extra_query_env: dict[str, str] = field(default_factory=dict)
    ingest: ServiceProcess | None = None
    query: ServiceProcess | None = None

    @property
    def base_url(self) -> str:
        assert self.query is not None
        return self.query.base_url

    @property
    def ingest_url(self) -> str:
        assert self.ingest is not None
        return self.ingest.base_url

    def start(self) -> Servers:
        env = {"DATABASE_URL": self.database_url, "LOG_LEVEL": "INFO", "RETRY_AFTER_S": "1"}
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        ingest_port, query_port = free_port(), free_port()
        self.ingest = ServiceProcess(
            [console_script("p1-ingest"), "serve", "--port", str(ingest_port)],
            {**env, "DEVICE_TOKENS": ",".join(f"{t}:{d}" for d, t in WRITE_TOKENS.items())},
            ingest_port,
            log_path=self.workdir / "ingest.log",
        ).start(wait=False)
        self.query = ServiceProcess(
            [console_script("p1-query"), "serve", "--port", str(query_port)],
            {
                **env,
                "READ_TOKENS": f"{READ_TOKEN}:{HOME}|{CABIN}",
                "SESSION_SECRET": SESSION_SECRET,
                **self.extra_query_env,
            },
            query_port,
            log_path=self.workdir / "query.log",
        ).start(wait=False)
        self.ingest.wait_ready(60)
        self.query.wait_ready(60)
        return self

    def stop(self) -> None:
        for proc in (self.query, self.ingest):
            if proc is not None:
                proc.stop()

    def api(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(
            self.base_url + path, params=params, headers={"Authorization": f"Bearer {READ_TOKEN}"}, timeout=30
        )

    def upload(self, device: str, meter: object, samples: Iterable[Sample]) -> int:
        """POSTs readings to ingest in batches; returns how many it stored or had already."""
        total = 0
        it = iter(samples)
        with httpx.Client(
            base_url=self.ingest_url, headers={"Authorization": f"Bearer {WRITE_TOKENS[device]}"}, timeout=120
        ) as client:
            while batch := list(islice(it, BATCH)):
                body = json.dumps({"device_id": device, "meter": meter, "samples": batch})
                r = client.post("/v1/samples", content=body, headers={"Content-Type": "application/json"})
                assert r.status_code == 200, r.text[:500]
                total += int(r.json()["accepted"]) + int(r.json()["duplicates"])
        return total


def local_midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=TZ).timestamp())


def last_sunday(year: int, month: int) -> date:
    d = date(year, month + 1, 1) - timedelta(days=1)
    return d - timedelta(days=(d.weekday() + 1) % 7)


def dst_days(today: date) -> tuple[date, date]:
    """The latest spring (23 h) and autumn (25 h) days of Europe/Brussels at least two days ago."""

    def latest(month: int) -> date:
        d = last_sunday(today.year, month)
        return d if d <= today - timedelta(days=2) else last_sunday(today.year - 1, month)

    return latest(3), latest(10)


@dataclass
class Meter:
    """The simulated household's meter, sent through ingest window by window."""

    device: str
    registers: Registers | None = None
    last: Sample | None = None

    def window(self, start: int, end: int, fine_s: int = 0) -> tuple[object, Iterator[Sample]]:
        """The meter's identity and its readings after ``start`` up to ``end``: one every 5 minutes,
        every second in the last ``fine_s`` seconds; the registers continue from the previous window."""
        start -= start % COARSE_STEP_S
        fine_from = max(start, end - fine_s)
        fine_from -= fine_from % COARSE_STEP_S
        registers = None if self.registers is None else dataclasses.replace(self.registers, second=start)
        history = History(PROFILES["family"], TZ, flavour("be", 5), Span(start, fine_from, end), registers)

        def readings() -> Iterator[Sample]:
            for s in history.readings():
                self.last = s
                yield s
            self.registers = history.registers()

        return history.meter, readings()

    def send(self, servers: Servers, windows: Sequence[tuple[int, int, int]]) -> int:
        """Sends each window (start, end, fine_s) in turn; returns the readings ingest holds of them."""
        total = 0
        for window in windows:
            meter, readings = self.window(*window)
            total += servers.upload(self.device, meter, readings)
        return total


def reading_now(previous: Sample, power_w: float) -> Sample:
    """A new reading at the current second: the previous one's registers (nothing flowed in the
    meantime, always consistent) with another power, so a changed power on screen is this reading."""
    ts = datetime.now(UTC).replace(microsecond=0)
    out = {k: v for k, v in previous.items() if not k.startswith("power_l")}
    out |= {"ts": ts.isoformat().replace("+00:00", "Z"), "power_w": power_w}
    return out


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


def load_plans(database_url: str, path: Path = PLANS) -> None:
    """The household's tariff plans, stored the way an operator does: ``p1-ingest tariffs load FILE``."""
    done = subprocess.run(
        [console_script("p1-ingest"), "tariffs", "load", str(path)],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@dataclass(frozen=True)
class Sent:
    """A notification row as p1-notify leaves it after delivering (services/notify/src/p1_notify/store.py)."""

    quarter_start: datetime
    kind: str
    message: str


def notifications_for(device: str, now: datetime) -> list[Sent]:
    """An hour ago a warning and its quarter's result; two days ago an older warning. The Now view's last
    warning is the one of an hour ago: newest first, a result is not a warning."""
    quarter = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0) - timedelta(hours=1)
    older = quarter - timedelta(days=2)
    _, recent = messages.warning(device, 4.32, 3.1, 5.25, quarter + timedelta(minutes=15), TZ)
    _, old = messages.warning(device, 3.6, 3.0, 1.9, older + timedelta(minutes=15), TZ)
    _, outcome = messages.result(device, 2.9, 3.1, 0.0)
    return [Sent(older, "warning", old), Sent(quarter, "warning", recent), Sent(quarter, "result", outcome)]


def add_notifications(database_url: str, device: str, rows: Sequence[Sent]) -> None:
    """Claims then marks sent each row with p1-notify's two statements' columns (migration 0011)."""

    async def write() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for row in rows:
                await conn.execute(
                    "INSERT INTO notifications (device_id, quarter_start, kind, message, claimed_at,"
                    " sent_at, channels) VALUES ($1, $2, $3, $4, $5::timestamptz,"
                    " $5::timestamptz + interval '1 second', $6::jsonb) ON CONFLICT DO NOTHING",
                    device,
                    row.quarter_start,
                    row.kind,
                    row.message,
                    row.quarter_start + timedelta(minutes=12 if row.kind == "warning" else 15, seconds=1),
                    json.dumps([{"channel": "ntfy://ntfy.sh/p...c", "ok": True, "attempts": 1}]),
                )
        finally:
            await conn.close()

    # its own thread: the browser tests' fixtures run inside pytest-asyncio's loop
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, write()).result(timeout=60)


@dataclass
class Seeded:
    servers: Servers
    home: Meter
    spring: date
    autumn: date
    today: date
    notifications: list[Sent]


@dataclass
class Watched:
    """A page and what it did that a test must not see: console errors, requests to other hosts."""

    page: Page
    origin: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert not self.errors, f"console errors: {self.errors}"
        assert not self.foreign, f"requests that left {self.origin}: {self.foreign}"
