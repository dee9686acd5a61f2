"""The supported time range in storage (migration 0005): the CHECK constraints refuse what lies outside
``p1_contracts.timerange``, and say the same bounds."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from p1_contracts.timerange import EARLIEST, LATEST
from p1_schema.bulk import load_device
from p1_schema.migrate import available_migrations

T0 = datetime(2026, 3, 1, tzinfo=UTC)
# A hypertable refuses year 1 itself ("timestamp out of range"): there the early reading is in 1970.
EARLY = {False: datetime(1, 1, 1, tzinfo=UTC), True: datetime(1970, 1, 1, tzinfo=UTC)}
RANGE_CONSTRAINTS = (
    "samples_ts_in_range",
    "devices_first_seen_in_range",
    "devices_last_seen_in_range",
    "devices_last_ts_in_range",
)


async def test_the_range_is_enforced_by_the_database(database_url: str, on_timescaledb: bool) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        insert = (
            "INSERT INTO samples (device_id, ts, power_w, import_kwh, export_kwh) VALUES ($1, $2, 0, 0, 0)"
        )
        dev = f"range-{uuid.uuid4().hex[:8]}"
        await conn.execute(insert, dev, EARLIEST)  # the first instant is inside
        for outside in (EARLIEST - timedelta(microseconds=1), LATEST, EARLY[on_timescaledb]):
            with pytest.raises(asyncpg.CheckViolationError, match="samples_ts_in_range"):
                await conn.execute(insert, dev, outside)
        await conn.execute("DELETE FROM samples WHERE device_id = $1", dev)
        await load_device(conn, dev, {"ts": [T0], "power_w": [0.0], "import_kwh": [1.0], "export_kwh": [0.0]})
        async with conn.transaction():
            await conn.execute("SELECT set_config('p1.ingest_writer', '8', true)")
            with pytest.raises(asyncpg.CheckViolationError, match="devices_first_seen_in_range"):
                await conn.execute("UPDATE devices SET first_seen = '-infinity' WHERE device_id = $1", dev)
        if on_timescaledb:
            return  # (the hypertable's chunks are TimescaleDB's; the constraints are checked above)
        # New monthly partitions carry the constraints (else ATTACH would refuse them).
        assert await conn.fetchval("SELECT p1_ensure_samples_partition('2041-05-01')") is True
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO samples_2041_05 (device_id, ts, power_w, import_kwh, export_kwh, flag)"
                " VALUES ($1, '2041-05-02', 0, 0, 0, 'bogus')",
                dev,
            )
    finally:
        await conn.close()


_STAMP = re.compile(r"'(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00)'")


async def test_the_constraints_say_the_range_of_p1_contracts_timerange(database_url: str) -> None:
    """timerange owns the range; migration 0005 restates it in SQL: every timestamp literal there, and
    every bound of the constraints as PostgreSQL holds them, is EARLIEST or LATEST."""
    sql = next(m.sql for m in available_migrations() if m.version == 5)
    literals = {datetime.fromisoformat(s) for s in _STAMP.findall(sql)}
    assert literals == {EARLIEST, LATEST}
    conn = await asyncpg.connect(database_url, server_settings={"TimeZone": "UTC"})
    try:
        for name in RANGE_CONSTRAINTS:
            defs = await conn.fetch(
                "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conname = $1", name
            )
            assert defs, name
            for d in defs:
                bounds = {datetime.fromisoformat(s) for s in _STAMP.findall(d["d"])}
                assert bounds == {EARLIEST, LATEST}, d["d"]
                assert f">= '{EARLIEST:%Y-%m-%d %H:%M:%S}+00'" in d["d"]
                assert f"< '{LATEST:%Y-%m-%d %H:%M:%S}+00'" in d["d"]
    finally:
        await conn.close()
