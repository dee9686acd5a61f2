"""``p1_notify.quarter.Quarters`` on a real PostgreSQL (a throwaway database of its own): the past months'
counted peaks behind Home Assistant's 12-month average are read once per device and local month, a failed
read leaves the average unknown (counted, logged once) and is tried again at the device's next quarter.

The device has only the meter's reported peaks (``meter_peaks``), Brussels months; the running month's peak
so far is the meter's of that month (ours cover nothing), each counted at least 2.5 kW:
- November 2026, the 11 months before are 2025-12 … 2026-10: 2025-12 5.0, 2026-08 3.0, 2026-10 4.0 kW; this
  month 2.0 → 2.5. Average (5.0 + 3.0 + 4.0 + 2.5) / 4 = 14.5 / 4 = 3.625 kW.
- December 2026, the 11 before are 2026-01 … 2026-11: 3.0, 4.0 and November's 2.5 (2025-12 has left the
  window); December has no peak yet. Average (3.0 + 4.0 + 2.5) / 3 = 9.5 / 3 = 3.1667 → 3.167 kW.
"""

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from p1_notify.quarter import Quarters
from p1_schema.migrate import migrate
from p1_schema.redis import LatestReading
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

DEVICE = "nq-past"
PEAKS_W = {"2025-11": 9000.0, "2025-12": 5000.0, "2026-08": 3000.0, "2026-10": 4000.0, "2026-11": 2000.0}


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator["asyncpg.Pool[asyncpg.Record]"]:
    url = await create_database(pg_server_url(), "p1_notify_quarters")
    try:
        await migrate(url)
        conn = await asyncpg.connect(url)
        try:
            await conn.executemany(
                "INSERT INTO meter_peaks (device_id, month, peak_w, peak_ts) VALUES ($1, $2, $3, $4)",
                [
                    (DEVICE, month, w, datetime(int(month[:4]), int(month[5:]), 10, 18, tzinfo=UTC))
                    for month, w in PEAKS_W.items()
                ],
            )
        finally:
            await conn.close()
        async with asyncpg.create_pool(url, min_size=1, max_size=2) as created:
            yield created
    finally:
        await drop_database(url)


def reading(ts: datetime, import_kwh: float) -> LatestReading:
    return LatestReading(ts, {"ts": ts, "import_kwh": import_kwh, "power_w": 800.0})


def failures(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("p1_notify_past_peaks_failures_total")


async def test_the_past_peaks_are_read_once_a_month_and_a_failed_read_is_tried_again(
    pool: "asyncpg.Pool[asyncpg.Record]", caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    quarters = Quarters(pool, ZoneInfo("Europe/Brussels"), None, 50.0, 5.0, registry)
    async with pool.acquire() as conn:
        # The database refuses the past months' statement (the only one reading capacity_days.buckets):
        # the running quarter is still computed, its 12-month average unknown.
        await conn.execute("ALTER TABLE capacity_days RENAME COLUMN buckets TO buckets_away")
        try:
            with caplog.at_level(logging.WARNING, logger="p1_notify.quarter"):
                first = await quarters.observe(
                    DEVICE, reading(datetime(2026, 11, 20, 10, 0, 10, tzinfo=UTC), 10.0), None
                )
                same = await quarters.observe(
                    DEVICE, reading(datetime(2026, 11, 20, 10, 5, tzinfo=UTC), 10.1), None
                )
        finally:
            await conn.execute("ALTER TABLE capacity_days RENAME COLUMN buckets_away TO buckets")
    assert first is not None
    assert same is not None
    assert (first.month_peak_kw, first.rolling_12m_avg_kw, same.rolling_12m_avg_kw) == (2.0, None, None)
    assert failures(registry) == 1.0  # once: the same quarter does not read again
    assert [r.getMessage() for r in caplog.records].count(
        "cannot read the past months' peaks; 12-month average unknown"
    ) == 1

    # The device's next quarter reads them again, now with success.
    later = await quarters.observe(
        DEVICE, reading(datetime(2026, 11, 20, 10, 15, 10, tzinfo=UTC), 10.2), None
    )
    assert later is not None
    assert later.rolling_12m_avg_kw == 3.625

    # December: read afresh for the new month's window (2025-12 left it; November's 2.5 joined it).
    december = await quarters.observe(
        DEVICE, reading(datetime(2026, 12, 1, 8, 0, 10, tzinfo=UTC), 20.0), None
    )
    assert december is not None
    assert december.month_peak_kw is None
    assert december.rolling_12m_avg_kw == 3.167
    # Kept for the month: a peak stored for a past month afterwards is not read at the next quarter.
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO meter_peaks (device_id, month, peak_w, peak_ts) VALUES ($1, '2026-09', 8000, $2)",
            DEVICE,
            datetime(2026, 9, 10, 18, tzinfo=UTC),
        )
    next_quarter = await quarters.observe(
        DEVICE, reading(datetime(2026, 12, 1, 8, 15, 10, tzinfo=UTC), 20.2), None
    )
    assert next_quarter is not None
    assert next_quarter.rolling_12m_avg_kw == 3.167
    assert failures(registry) == 1.0
