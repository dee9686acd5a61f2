"""Hand-made meter histories, uploaded to a real ingest process over HTTP (``p1-ingest serve``: ingest's
own rules decide epochs, flags and rollups), and the bulk device loaded by the schema's bulk loader.

A scene is a run of readings at a fixed step; ``power_w`` holds in the interval after each reading, so
the import counter at a reading is the previous counter + max(P, 0) × step, and export likewise with
−min(P, 0). Scenes of one device continue the counters exactly, so the gaps between scenes carry no
energy and interpolation across them yields 0. Each test states the expected numbers by hand.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

HASHED_TOKEN = "tok-hashed"
PRICE = 50.0


def read_tokens() -> str:
    """A plain token for everything, one for q-cap, and one given only as its SHA-256 digest."""
    digest = hashlib.sha256(HASHED_TOKEN.encode()).hexdigest()
    return f"tok-all:*,tok-cap:q-cap,sha256:{digest}:q-dst|q-swap"


# Every device the query tests upload; the seeding ingest has one token for each.
SEEDED_DEVICES = (
    "q-cap",
    "q-dst",
    "q-swap",
    "q-sparse",
    "q-int-glitch",
    "q-int-zero",
    "q-int-late",
    "q-int-reset",
    "q-cache",
    "q-first",
    "q-forms",
    "q-gas-dsmr4",
    "q-gas-replaced",
    "q-water-glitch",
    "q-tariffs",
    "q-no-registers",
    "q-spike",
    "q-week",
    "q-live",  # test_live: readings uploaded while a stream is open
    "q-now",
    "q-now-early",
    "q-price-sums",
)


def seed_token(device_id: str) -> str:
    return f"seed-{device_id}"


def ingest_env(database_url: str) -> dict[str, str]:
    """The seeding ingest: no Redis (realtime tests decide what Redis holds), no rate limit in the way."""
    return {
        "DATABASE_URL": database_url,
        "DEVICE_TOKENS": ",".join(f"{seed_token(d)}:{d}" for d in SEEDED_DEVICES),
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_S": "1000",
        "RATE_LIMIT_BURST": "1000",
    }


async def upload(
    ingest: httpx.AsyncClient, device_id: str, samples: list[dict[str, object]], meter: object = None
) -> dict[str, Any]:
    """One batch through ``POST /v1/samples``; it must be stored (200)."""
    body: dict[str, object] = {"device_id": device_id, "samples": samples}
    if meter is not None:
        body["meter"] = meter
    r = await ingest.post(
        "/v1/samples",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {seed_token(device_id)}", "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def query_env(database_url: str, redis_url: str | None) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "READ_TOKENS": read_tokens(),
        "CAPACITY_PRICE_EUR_PER_KW_YEAR": str(PRICE),
        "LOG_LEVEL": "WARNING",
        # Tests change Redis between requests and expect to see it at once.
        "REALTIME_MEMO_S": "0",
        # Dynamic price sums are settled by the tests that want them (test_price_sums), never behind
        # another test's back.
        "PRICE_SUMS_INTERVAL_S": "0",
    }
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@dataclass
class Meter:
    device_id: str
    serial: str = "M1"
    import_kwh: float = 1000.0
    export_kwh: float = 0.0
    readings: list[dict[str, object]] = field(default_factory=list)
    batches: list[tuple[str, list[dict[str, object]]]] = field(default_factory=list)

    def scene(
        self,
        start: datetime,
        count: int,
        power_w: Callable[[datetime], float],
        step_s: int = 60,
        extra: Callable[[datetime], dict[str, object]] | None = None,
    ) -> None:
        """``count`` readings from ``start`` every ``step_s``; the last reading's power drives nothing."""
        for k in range(count):
            t = start + timedelta(seconds=step_s * k)
            p = power_w(t)
            reading: dict[str, object] = {
                "ts": t.isoformat(),
                "power_w": p,
                "import_kwh": round(self.import_kwh, 9),
                "export_kwh": round(self.export_kwh, 9),
            }
            if extra is not None:
                reading.update(extra(t))
            self.readings.append(reading)
            if k < count - 1:
                self.import_kwh += max(p, 0.0) * step_s / 3.6e6
                self.export_kwh += -min(p, 0.0) * step_s / 3.6e6
        self.flush()

    def replace_meter(self, serial: str) -> None:
        self.flush()
        self.serial = serial
        self.import_kwh = 0.0
        self.export_kwh = 0.0

    def flush(self) -> None:
        if self.readings:
            self.batches.append((self.serial, self.readings))
            self.readings = []

    async def upload(self, ingest: httpx.AsyncClient) -> None:
        """Every reading through the ingest process, in batches of at most 5,000, in time order."""
        self.flush()
        for serial, readings in self.batches:
            meter = {"serial": serial, "model": "TEST", "protocol_version": 50}
            for i in range(0, len(readings), 5000):
                await upload(ingest, self.device_id, readings[i : i + 5000], meter)

    def columns(self) -> dict[str, list[object]]:
        """Every reading column-wise, times parsed (what ``p1_schema.bulk.load_device`` takes)."""
        self.flush()
        rows = [r for _, readings in self.batches for r in readings]
        names = dict.fromkeys(k for r in rows for k in r)
        return {
            name: [datetime.fromisoformat(str(r[name])) if name == "ts" else r.get(name) for r in rows]
            for name in names
        }


def const(p: float) -> Callable[[datetime], float]:
    return lambda _t: p


def steps(*pieces: tuple[datetime, float]) -> Callable[[datetime], float]:
    """Power by time: each (from, watts) holds until the next piece."""

    def power(t: datetime) -> float:
        value = pieces[0][1]
        for since, watts in pieces:
            if t >= since:
                value = watts
        return value

    return power


# ---- capacity: device q-cap ---------------------------------------------------------------------
# February 2026 in Brussels is UTC+1. Quarter demands (kW) by hand:
#   2026-02-10 17:45 local  400 W                 → counter 0.1 kWh × 4 = 0.4
#   2026-02-10 18:00 local 4000 W                 → counter 1.0 kWh × 4 = 4.0   ← the month's peak
#   2026-02-10 18:15 local 1000 W                 → 1.0
#   2026-02-11 12:00 local −8000 W (solar export) → import 0 → 0.0 (8.0 if export counted)
#   2026-02-12 11:00 local 2000 W, meter's own avg_power_15m_w 3500 at 11:14 → 3.5 (meter's value wins)
#   other quarters of 2026-02-11/12: 200 W → 0.2, or 2000 W → 2.0
# The meter reports month_peak_w 4100 → 4.1 kW: 2.4 % above ours → flagged.
# Other months: 2025-01 9 kW (outside the 12 months of 2026-02), 2025-06 1.2 kW (counts as 2.5),
# 2025-09 5.0 kW; no data in the other months. Rolling mean = (2.5 + 5.0 + 4.0) / 3 = 3.833 kW.
def capacity_meter() -> Meter:
    m = Meter("q-cap")
    m.scene(utc(2025, 1, 20, 17, 0), 16, const(9000))
    m.scene(utc(2025, 6, 10, 12, 0), 16, const(1200))
    m.scene(utc(2025, 9, 3, 18, 0), 16, const(5000))
    m.scene(
        utc(2026, 2, 10, 16, 45),
        46,
        steps(
            (utc(2026, 2, 10, 16, 45), 400), (utc(2026, 2, 10, 17, 0), 4000), (utc(2026, 2, 10, 17, 15), 1000)
        ),
    )
    m.scene(
        utc(2026, 2, 11, 10, 45),
        46,
        steps(
            (utc(2026, 2, 11, 10, 45), 200), (utc(2026, 2, 11, 11, 0), -8000), (utc(2026, 2, 11, 11, 15), 200)
        ),
    )

    def meter_fields(t: datetime) -> dict[str, object]:
        fields: dict[str, object] = {"month_peak_w": 4100.0}
        if utc(2026, 2, 12, 10, 0) <= t < utc(2026, 2, 12, 10, 15):
            fields["avg_power_15m_w"] = 3500.0
        return fields

    m.scene(utc(2026, 2, 12, 9, 45), 46, const(2000), extra=meter_fields)
    return m


# ---- DST days: device q-dst, 600 W constant, a reading every minute -----------------------------
# 2026-03-29 (23 h): 13.8 kWh; 2026-10-25 (25 h): 15.0 kWh.
def dst_meter() -> Meter:
    m = Meter("q-dst")
    m.scene(utc(2026, 3, 28, 21, 0), 26 * 60 + 1, const(600))
    m.scene(utc(2026, 10, 24, 21, 0), 27 * 60 + 1, const(600))
    return m


# ---- meter replacement: device q-swap, 1200 W constant ------------------------------------------
# 2026-05-05 local (UTC+2) = [05-04 22:00Z, 05-05 22:00Z). Old meter 5000 kWh from 05-04 21:00Z to
# 05-05 10:00Z; new meter from 0 kWh at 10:10Z. The 10 minutes between are unknown and counted nowhere.
def swap_meter() -> Meter:
    m = Meter("q-swap", import_kwh=5000.0)
    m.scene(utc(2026, 5, 4, 21, 0), 13 * 60 + 1, const(1200))
    m.replace_meter("M2")
    m.scene(utc(2026, 5, 5, 10, 10), 13 * 60 + 50 + 1, const(1200))
    return m


# ---- sparse readings and a gap: device q-sparse -------------------------------------------------
# Readings every 10 s at :05, :15, … (never on a minute); 3600 W before 10:00:05Z, 7200 W after.
# Readings stop at 10:30:05Z and resume at 14:30:05Z, the counter 2.4 kWh higher (the gap's energy).
def sparse_meter() -> Meter:
    m = Meter("q-sparse")
    t0 = utc(2026, 6, 1, 9, 58, 55)
    m.scene(t0, 188, steps((t0, 3600), (utc(2026, 6, 1, 10, 0, 5), 7200)), step_s=10)
    m.import_kwh += 2.4
    m.scene(utc(2026, 6, 1, 14, 30, 5), 241, const(7200), step_s=10)
    return m


# ---- many raw readings: device q-bulk (loaded by the ``bulk`` fixture only) ------------------------
# 1 s readings at 500 W from 2026-07-01T00:00:00Z: many export pages (export.PAGE_ROWS), and a CSV
# export (~5 MB) larger than what loopback's socket buffers absorb for a client that never reads (~2 MB).
BULK_DEVICE = "q-bulk"
BULK_START = utc(2026, 7, 1)
BULK_ROWS = 60_000


def bulk_meter() -> Meter:
    m = Meter(BULK_DEVICE)
    m.scene(BULK_START, BULK_ROWS, const(500.0), step_s=1)
    return m


def all_meters() -> Sequence[Meter]:
    return (capacity_meter(), dst_meter(), swap_meter(), sparse_meter())
