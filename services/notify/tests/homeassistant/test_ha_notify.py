"""``p1-notify run`` with ``mqtt:`` against the real parts: a device's readings stored in PostgreSQL with
their rollups (``p1_schema.bulk``, the schema's own fold) and then published one by one to Redis with
``p1_schema.redis.store_latest``, what ingest does after each commit (no ingest process: one process
start less on a busy 2-core CI); notify following them; what Home Assistant would see on Mosquitto.

The device's quarter, by hand: one 300 W reading at 09:59:50 UTC, then 5 kW with a reading every 10 s
from 10:00:00 to 10:04:50 (30 readings, each +5 kW × 10 s = 0.013889 kWh):
- energy so far: 29 steps after 10:00:00 → 0.402778 kWh; ``kw_so_far`` = × 4 = 1.611 kW;
- ``projected_kw``: (0.402778 + 5 kW × 610 s left / 3600) × 4 = (0.402778 + 0.847222) × 4 = 5.0 kW;
- ``month_peak_kw``: the month's only completed quarter, 09:45, with its one 300 W reading: 0.3 kW;
- warned: projected 5.0 kW over the 2.5 kW floor for minutes, and the quarter crosses 2.5 kW (0.625 kWh)
  160 s after the last reading (0.222222 kWh left at 5 kW), within the rule's lead (180 s or 300 s):
  ``peak_warning`` ON.

The 12-month average (``rolling_12m_avg_kw``), the ledger's rule (README "Capacity"): the mean of the counted
peaks (each at least 2.5 kW) of November and the 11 months before that have a peak, Brussels months.
Seeded as ingest keeps them (``capacity_quarters`` and their ``capacity_days``, ``meter_peaks``):
- 2026-08: our quarters 3.6 and 2.9 kW, no meter peak → 3.6 (ours);
- 2026-09: our one quarter of 1.2 kW but the meter reported 4.2 kW: ours do not cover the month → 4.2;
- 2026-10: the meter reported 1.8 kW → the 2.5 kW floor;
- 2025-11: the meter reported 9 kW, but 12 months back is outside the window → not counted;
- 2026-11: the peak so far 0.3 kW → 2.5.
Mean (3.6 + 4.2 + 2.5 + 2.5) / 4 = 12.8 / 4 = 3.2 kW, and query's ledger of November says the same.

Its own database: the seeded quarters have no readings behind them, which the suites sharing the session's
database hold as a fault (query's test of the kept quarter demands against the rules)."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from ha_testkit import Recorder, clear_retained, recording
from notify_kit import Meter, Receiver, notify_process, quarter_start, write_config
from redis.asyncio import Redis

from p1_contracts.models import Sample
from p1_notify.homeassistant.discovery import Topics
from p1_schema.bulk import load_device
from p1_schema.capacity import REFRESH_DAYS_SQL
from p1_schema.migrate import migrate
from p1_schema.redis import store_latest
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
async def own_database() -> AsyncIterator[str]:
    url = await create_database(pg_server_url(), "p1_notify_ha")
    try:
        await migrate(url)
        yield url
    finally:
        await drop_database(url)


async def store(database_url: str, redis_url: str, device: str, samples: list[Sample]) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        columns = {
            name: [getattr(s, name) for s in samples]
            for name in ("ts", "power_w", "import_kwh", "export_kwh")
        }
        await load_device(conn, device, columns)
    finally:
        await conn.close()
    redis = Redis.from_url(redis_url)
    try:
        for sample in samples:
            assert await store_latest(redis, device, sample)
    finally:
        await redis.aclose()


async def seed_past_months(database_url: str, device: str) -> None:
    """The past months of the docstring: completed quarters with their days, and the meter's peaks."""
    quarters = [
        (datetime(2026, 8, 14, 18, 0, tzinfo=UTC), 3.6),
        (datetime(2026, 8, 14, 18, 15, tzinfo=UTC), 2.9),
        (datetime(2026, 9, 10, 19, 0, tzinfo=UTC), 1.2),
    ]
    meter = [  # (month, peak_w, when)
        ("2026-09", 4200.0, datetime(2026, 9, 21, 7, 0, tzinfo=UTC)),
        ("2026-10", 1800.0, datetime(2026, 10, 5, 17, 0, tzinfo=UTC)),
        ("2025-11", 9000.0, datetime(2025, 11, 12, 19, 0, tzinfo=UTC)),
    ]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO capacity_quarters (device_id, bucket, kw) VALUES ($1, $2, $3)",
            [(device, bucket, kw) for bucket, kw in quarters],
        )
        await conn.fetchrow(REFRESH_DAYS_SQL, device, quarters[0][0], datetime(2026, 9, 11, tzinfo=UTC))
        await conn.executemany(
            "INSERT INTO meter_peaks (device_id, month, peak_w, peak_ts) VALUES ($1, $2, $3, $4)",
            [(device, *peak) for peak in meter],
        )
    finally:
        await conn.close()


def query_process(workdir: Path, database_url: str) -> ServiceProcess:
    port = free_port()
    env = {"DATABASE_URL": database_url, "READ_TOKENS": "ha-read:*", "LOG_LEVEL": "WARNING"}
    return ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)],
        env,
        port,
        log_path=workdir / "query-ha.log",
    )


def availability(recorder: Recorder, topics: Topics) -> list[bytes]:
    return [m.payload for m in recorder.on(topics.availability)]


async def test_notify_keeps_home_assistant_current(
    workdir: Path, own_database: str, redis_url: str, receiver: Receiver
) -> None:
    database_url = own_database
    device = f"ha-{uuid.uuid4().hex[:8]}.p1"  # a '.', which no Home Assistant topic id may hold
    root = f"test-{uuid.uuid4().hex}"
    topics = Topics(f"{root}/ha", f"{root}/p1")
    config = write_config(
        workdir / "notify-ha.yaml",
        f"devices:\n  {device}:\n    urls: [json://127.0.0.1:{receiver.port}/ok/ha]\n"
        f"mqtt:\n  url: mqtt://127.0.0.1:1883\n"
        f"  discovery_prefix: {topics.discovery_prefix}\n  topic_prefix: {topics.topic_prefix}\n",
    )
    notify = notify_process(workdir, database_url, config, redis_url, "notify-ha")
    query = query_process(workdir, database_url)
    async with recording(root) as recorder:
        try:
            await asyncio.gather(asyncio.to_thread(notify.start, 60), asyncio.to_thread(query.start, 60))
            await seed_past_months(database_url, device)
            meter = Meter(device, quarter_start(20, 9, 59).replace(second=40))
            samples = [
                Sample.model_validate_json(json.dumps(s))
                for s in meter.readings(10, 300.0) + meter.readings(300, 5000.0)
            ]
            # After notify is following: it judges each reading as it is published, in order.
            await store(database_url, redis_url, device, samples)

            def newest() -> dict[str, object] | None:
                found = [json.loads(m.payload) for m in recorder.on(topics.state(device)) if m.payload]
                return found[-1] if found else None

            await recorder.until(lambda: (newest() or {}).get("as_of") == "2026-11-20T10:04:50Z", 30)
            assert newest() == {
                "as_of": "2026-11-20T10:04:50Z",
                "power_w": 5000.0,
                "import_kwh": round(meter.import_kwh, 6),
                "export_kwh": 0.0,
                "kw_so_far": 1.611,
                "projected_kw": 5.0,
                "month_peak_kw": 0.3,
                "rolling_12m_avg_kw": 3.2,
                "peak_warning": "ON",
            }
            async with httpx.AsyncClient(base_url=query.base_url, timeout=30) as client:
                r = await client.get(
                    f"/v1/devices/{device}/capacity",
                    params={"month": "2026-11"},
                    headers={"Authorization": "Bearer ha-read"},
                )
            assert r.status_code == 200, r.text
            assert r.json()["rolling_12m_avg_kw"] == 3.2
            configs = {m.topic for m in recorder.messages if m.topic.endswith("/config")}
            assert len(configs) == 8
            assert all(f"/p1_{device.replace('.', '_d')}/" in topic for topic in configs)
        finally:
            assert query.stop() in CLEAN_EXITS, query.logs()
            assert notify.stop() in CLEAN_EXITS, notify.logs()
            # A clean stop says offline itself (the will is only for a death).
            await recorder.until(
                lambda: [m.payload for m in recorder.on(topics.availability)][-1:] == [b"offline"]
            )
            await clear_retained({m.topic for m in recorder.messages})
