"""``p1-ingest maintain``. Plain PostgreSQL: partitions ahead, backlog moved out of the default
partition, raw data beyond retention dropped (whole partitions), rollups kept. TimescaleDB: the
retention policy set (left alone when unchanged) and run with the compression policy: whole chunks beyond
retention dropped, older ones compressed, all reported in chunks; the rollups are kept."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from ingest_kit import chunks, run_maintain
from store_kit import write

from p1_contracts.models import SampleBatch
from p1_ingest.maintain import _add_months
from p1_schema.migrate import migrate
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url


@pytest.fixture
async def own_db() -> AsyncIterator[str]:
    url = await create_database(pg_server_url(), prefix="p1_maint")
    try:
        await migrate(url)
        yield url
    finally:
        await drop_database(url)


def month_start(d: datetime, months: int = 0) -> date:
    return _add_months(date(d.year, d.month, 1), months)


def batch(device: str, start: datetime, n: int = 10) -> SampleBatch:
    samples = [
        {"ts": (start + timedelta(minutes=i)).isoformat(), "power_w": 1, "import_kwh": i, "export_kwh": 0}
        for i in range(n)
    ]
    return SampleBatch.model_validate_json(json.dumps({"device_id": device, "samples": samples}))


async def partitions(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'samples'::regclass"""
    )
    out = {}
    for r in rows:
        out[r["relname"]] = await conn.fetchval(f'SELECT count(*) FROM "{r["relname"]}"')
    return out


@pytest.mark.usefixtures("needs_plain_postgresql")
async def test_partitions_backlog_and_retention(own_db: str) -> None:
    now = datetime.now(UTC)
    backlog = datetime.combine(month_start(now, -5), datetime.min.time(), UTC) + timedelta(days=3)
    ancient = datetime.combine(month_start(now, -30), datetime.min.time(), UTC) + timedelta(days=3)
    old_part = month_start(now, -20)
    conn = await asyncpg.connect(own_db)
    try:
        await conn.execute("SELECT p1_ensure_samples_partition($1)", old_part)
        old = datetime.combine(old_part, datetime.min.time(), UTC) + timedelta(days=1)
        for dev, start in (
            ("recent", now - timedelta(hours=1)),
            ("backlog", backlog),
            ("ancient", ancient),
            ("old", old),
        ):
            assert (await write(conn, batch(dev, start), now)).accepted == 10
        before = await partitions(conn)
        assert before["samples_default"] == 20  # backlog + ancient: their months had no partition
        assert f"samples_{old_part:%Y_%m}" in before

        out = run_maintain(own_db, 365).stdout
        after = await partitions(conn)
        backlog_part = f"samples_{month_start(now, -5):%Y_%m}"
        ahead = f"samples_{month_start(now, 3):%Y_%m}"
        assert backlog_part in out
        assert ahead in out
        assert after[backlog_part] == 10
        assert after["samples_default"] == 0  # the ancient rows were beyond retention: deleted
        assert f"samples_{old_part:%Y_%m}" not in after  # dropped whole
        assert f"samples_{month_start(now):%Y_%m}" in after
        assert ahead in after
        counts = dict(await conn.fetch("SELECT device_id, count(*) FROM samples GROUP BY 1"))
        assert counts == {"recent": 10, "backlog": 10}
        # Rollups are kept forever.
        assert await conn.fetchval("SELECT count(DISTINCT device_id) FROM rollup_15m") == 4

        again = run_maintain(own_db, 365).stdout
        assert "created none, dropped none, 0 old row(s)" in again
        assert await partitions(conn) == after
    finally:
        await conn.close()


def hourly(device: str, start: datetime, hours: int) -> list[SampleBatch]:
    samples = [
        {"ts": (start + timedelta(hours=i)).isoformat(), "power_w": 1000, "import_kwh": i, "export_kwh": 0}
        for i in range(hours)
    ]
    return [
        SampleBatch.model_validate_json(json.dumps({"device_id": device, "samples": samples[k : k + 5000]}))
        for k in range(0, hours, 5000)
    ]


Chunk = dict[str, Any]


async def retention_policies(conn: asyncpg.Connection) -> list[tuple[int, timedelta]]:
    rows = await conn.fetch(
        """SELECT job_id, (config->>'drop_after')::interval AS after FROM timescaledb_information.jobs
           WHERE proc_name = 'policy_retention' AND hypertable_name = 'samples'"""
    )
    return [(r["job_id"], r["after"]) for r in rows]


@pytest.mark.usefixtures("needs_timescaledb")
async def test_timescaledb_retention_and_compression_applied_and_reported_in_chunks(own_db: str) -> None:
    now = datetime.now(UTC)
    start = (now - timedelta(days=100)).replace(minute=0, second=0, microsecond=0)
    hours = int((now - start) / timedelta(hours=1))
    conn = await asyncpg.connect(own_db)
    try:
        for b in hourly("kept", start, hours):
            assert (await write(conn, b, now)).accepted == len(b.samples)
        loaded = await chunks(conn)
        assert not any(c["is_compressed"] for c in loaded)

        def split(days: int, among: list[Chunk]) -> tuple[list[Chunk], list[Chunk]]:
            """(newer, wholly older) than ``days`` ago."""
            cut = now - timedelta(days=days)
            return [c for c in among if c["range_end"] > cut], [c for c in among if c["range_end"] <= cut]

        kept, beyond = split(60, loaded)
        _, to_compress = split(14, kept)  # 14 days: migration 0001's compress_after
        assert beyond
        assert to_compress
        out = run_maintain(own_db, 60).stdout
        [(job, after)] = await retention_policies(conn)
        assert after == timedelta(days=60)
        assert (
            f"TimescaleDB hypertable samples: retention policy set to 60 days (job {job}), run now: "
            f"{len(beyond)} chunk(s) dropped; compression policy after 14 days (job "
        ) in out
        n = len(to_compress)
        assert f"run now: {n} chunk(s) compressed; {len(kept)} chunk(s), {n} compressed" in out
        assert "samples_default" not in out
        after_60 = await chunks(conn)
        assert [c["range_start"] for c in after_60] == [c["range_start"] for c in kept]
        assert [c["is_compressed"] for c in after_60] == [c in to_compress for c in kept]

        again = run_maintain(own_db, 60).stdout  # the same job, schedule kept; nothing left to do
        assert f"retention policy unchanged at 60 days (job {job}), run now: 0 chunk(s) dropped" in again
        assert "run now: 0 chunk(s) compressed" in again

        kept_30, beyond_30 = split(30, kept)
        out = run_maintain(own_db, 30).stdout
        [(job_30, after)] = await retention_policies(conn)  # replaced, not added
        assert after == timedelta(days=30)
        assert f"set to 30 days (job {job_30}), run now: {len(beyond_30)} chunk(s) dropped" in out
        assert [c["range_start"] for c in await chunks(conn)] == [c["range_start"] for c in kept_30]
        # By hand: one reading an hour survives from the first kept chunk's start (or the data's).
        first = max(kept_30[0]["range_start"], start)
        assert await conn.fetchval("SELECT min(ts) FROM samples") == first
        assert await conn.fetchval("SELECT count(*) FROM samples") == hours - (first - start) // timedelta(
            hours=1
        )
        # Rollups are kept forever: every hour of the 100 days is still there.
        assert await conn.fetchval("SELECT sum(n) FROM rollup_1h WHERE device_id = 'kept'") == hours
    finally:
        await conn.close()
