"""The bulk loader: raw rows, rollups, device row and first epoch as ingest would leave them for a day of
good readings, each number computed by hand; and the schema's fold of quarters into hours and days.

A reading a minute at a steady 600 W from 2026-03-02 00:00Z: +0.01 kWh a reading, 15 readings and
0.14 kWh (first to last reading) per quarter, 60 and 0.59 per hour. Brussels is UTC+1 that day, so the
readings span two local days: 1,380 readings on 2 March (from 01:00 local), 60 on 3 March.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from p1_schema.bulk import load_device
from p1_schema.rollups import COLUMNS, HOURS_AND_DAYS_FROM_QUARTERS_SQL, TABLES

T0 = datetime(2026, 3, 2, tzinfo=UTC)
N = 1440


def _day() -> dict[str, list[Any]]:
    return {
        "ts": [T0 + timedelta(minutes=k) for k in range(N)],
        "power_w": [600.0] * N,
        "import_kwh": [round(100 + k / 100, 2) for k in range(N)],
        "export_kwh": [5.0] * N,
    }


async def _rollups(conn: Any, table: str, device: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {', '.join(COLUMNS)} FROM {table} WHERE device_id = $1 ORDER BY bucket, epoch", device
    )
    return [dict(r) for r in rows]


async def test_a_day_of_readings_and_its_rollups_by_hand(database_url: str) -> None:
    dev = f"bulk-{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        assert await load_device(conn, dev, _day(), meter_serial="S1") == N
        assert await conn.fetchval("SELECT count(*) FROM samples WHERE device_id = $1", dev) == N
        quarters = await _rollups(conn, "rollup_15m", dev)
        assert len(quarters) == 96
        assert all(q["n"] == 15 and q["power_sum"] == 9000 and q["epoch"] == 0 for q in quarters)
        assert all(round(q["import_kwh_max"] - q["import_kwh_min"], 9) == 0.14 for q in quarters)
        assert quarters[1]["first_ts"] == T0 + timedelta(minutes=15)
        hours = await _rollups(conn, "rollup_1h", dev)
        assert [h["n"] for h in hours] == [60] * 24
        assert all(round(h["import_kwh_max"] - h["import_kwh_min"], 9) == 0.59 for h in hours)
        days = await _rollups(conn, "rollup_1d", dev)
        assert [(d["bucket"], d["n"]) for d in days] == [
            (datetime(2026, 3, 1, 23, tzinfo=UTC), 1380),
            (datetime(2026, 3, 2, 23, tzinfo=UTC), 60),
        ]
        assert (days[0]["import_kwh_min"], days[1]["import_kwh_max"]) == (100.0, 114.39)
        device = await conn.fetchrow("SELECT * FROM devices WHERE device_id = $1", dev)
        last = T0 + timedelta(minutes=N - 1)
        assert (device["first_seen"], device["last_seen"], device["last_ts"], device["good_ts"]) == (
            T0,
            last,
            last,
            last,
        )
        assert (device["last_import_kwh"], device["meter_serial"], device["current_epoch"]) == (
            114.39,
            "S1",
            0,
        )
        epochs = await conn.fetch(
            "SELECT epoch, started_at, reason FROM counter_epochs WHERE device_id = $1", dev
        )
        assert [tuple(e) for e in epochs] == [(0, T0, "first")]
    finally:
        await conn.close()


async def test_a_device_that_exists_is_refused_and_nothing_is_added(database_url: str) -> None:
    dev = f"bulk-{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await load_device(conn, dev, _day())
        before = await _rollups(conn, "rollup_15m", dev)
        later = {k: v[:10] for k, v in _day().items()}
        later["ts"] = [t + timedelta(days=1) for t in later["ts"]]
        with pytest.raises(asyncpg.UniqueViolationError):
            await load_device(conn, dev, later)
        assert await conn.fetchval("SELECT count(*) FROM samples WHERE device_id = $1", dev) == N
        assert await _rollups(conn, "rollup_15m", dev) == before
    finally:
        await conn.close()


async def test_hours_and_days_folded_from_quarters_equal_those_of_the_readings(database_url: str) -> None:
    """A history made as quarters (a benchmark's year) gets the hours and days its readings would give."""
    dev, copy = f"bulk-{uuid.uuid4().hex[:8]}", f"quarters-{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await load_device(conn, dev, _day())
        cols = ", ".join(COLUMNS)
        copy_sql = f"INSERT INTO rollup_15m (device_id, {cols}) SELECT $2, {cols} FROM rollup_15m"
        await conn.execute(copy_sql + " WHERE device_id = $1", dev, copy)
        counts = await conn.fetchrow(HOURS_AND_DAYS_FROM_QUARTERS_SQL, copy, T0, T0 + timedelta(days=1))
        assert (counts["r1h"], counts["r1d"]) == (24, 2)
        for table in TABLES:
            assert await _rollups(conn, table, copy) == await _rollups(conn, table, dev), table
    finally:
        await conn.close()
