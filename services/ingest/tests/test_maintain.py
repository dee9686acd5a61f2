"""``p1-ingest maintain`` on plain PostgreSQL: partitions ahead, backlog moved out of the default
partition, raw data beyond retention dropped (whole partitions), rollups kept."""

import json
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from p1_contracts.models import SampleBatch
from p1_ingest.maintain import _add_months
from p1_ingest.migrate import migrate
from p1_ingest.store import write_batch
from p1_servicekit.testing import console_script, create_database, drop_database, pg_server_url


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


def run_maintain(url: str, days: int) -> str:
    done = subprocess.run(
        [console_script("p1-ingest"), "maintain"],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": url, "RAW_RETENTION_DAYS": str(days)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


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
            assert (await write_batch(conn, batch(dev, start), now)).accepted == 10
        before = await partitions(conn)
        assert before["samples_default"] == 20  # backlog + ancient: their months had no partition
        assert f"samples_{old_part:%Y_%m}" in before

        out = run_maintain(own_db, 365)
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

        again = run_maintain(own_db, 365)
        assert "created none, dropped none, 0 old row(s)" in again
        assert await partitions(conn) == after
    finally:
        await conn.close()
