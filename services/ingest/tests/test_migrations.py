"""Migrations applied to a database that already holds data: for every schema version v before the
latest, a database is migrated to v, loaded as an ingest of v left it (on TimescaleDB: a hypertable whose
older chunks are compressed), then migrated to the latest. Every reading, device and rollup must come
through unchanged, and the current ingest path must work on the result (late readings into compressed
chunks included). Migrated as ``p1-ingest migrate`` does, with the rebuilds migrations ask for.
Generic: a new migration is covered as soon as its file exists."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from ingest_kit import (
    BUCKETS,
    ROLLUP_COLS,
    assert_rollups_exact,
    chunks,
    rollup_from_raw_sql,
    run_compression_policy,
)
from store_kit import write

from p1_contracts.models import SampleBatch
from p1_ingest.maintain import COMPRESSION, policy_job
from p1_ingest.rebuild import migrate
from p1_schema.migrate import available_migrations
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

VERSIONS = [m.version for m in available_migrations()]
STEP = timedelta(minutes=10)
DAYS = 30
DEVICE = "migrated"


@pytest.fixture
async def empty_db() -> AsyncIterator[str]:
    url = await create_database(pg_server_url(), prefix="p1_mig")
    try:
        yield url
    finally:
        await drop_database(url)


async def load(conn: Any, start: datetime, n: int) -> None:
    """What every schema version has: raw readings (600 W, so +0.1 kWh a reading), the device, its first
    epoch, and each rollup that exists at this version, computed from the raw rows as ingest wrote them."""
    await conn.execute(
        """INSERT INTO samples (device_id, ts, epoch, power_w, import_kwh, export_kwh, gas_m3)
           SELECT $1, $2::timestamptz + i * interval '10 minutes', 0, 600, 1000 + i / 10.0, 50,
                  10 + i / 1000.0
           FROM generate_series(0, $3 - 1) AS i""",
        DEVICE,
        start,
        n,
    )
    await conn.execute(
        """INSERT INTO devices (device_id, first_seen, last_seen, current_epoch, last_ts, last_import_kwh,
                                last_export_kwh)
           SELECT $1, min(ts), max(ts), 0, max(ts), max(import_kwh), max(export_kwh)
           FROM samples WHERE device_id = $1""",
        DEVICE,
    )
    await conn.execute(
        "INSERT INTO counter_epochs (device_id, epoch, started_at, reason) VALUES ($1, 0, $2, 'first')",
        DEVICE,
        start,
    )
    flagged = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
        " WHERE table_name = 'samples' AND column_name = 'flag')"
    )
    for table, bucket in BUCKETS:
        if await conn.fetchval("SELECT to_regclass($1)", table) is not None:
            from_raw = rollup_from_raw_sql(bucket, flagged)
            await conn.execute(
                f"INSERT INTO {table} (device_id, {ROLLUP_COLS}) SELECT $1, * FROM ({from_raw}) r", DEVICE
            )


async def snapshot(conn: Any) -> dict[str, Any]:
    """Everything a migration must keep: each reading (as a digest), the device and its epochs."""
    raw = await conn.fetchrow(
        """SELECT count(*) AS n, md5(string_agg(concat_ws('|', device_id, ts, epoch, power_w, import_kwh,
                  export_kwh, gas_m3), ',' ORDER BY device_id, ts)) AS digest FROM samples"""
    )
    device = await conn.fetchrow(
        """SELECT first_seen, last_seen, current_epoch, last_ts, last_import_kwh, last_export_kwh
           FROM devices WHERE device_id = $1""",
        DEVICE,
    )
    epochs = await conn.fetch(
        "SELECT epoch, started_at, reason FROM counter_epochs WHERE device_id = $1", DEVICE
    )
    return {"raw": dict(raw), "device": dict(device), "epochs": [dict(e) for e in epochs]}


def reading(ts: datetime, import_kwh: float) -> dict[str, Any]:
    return {"ts": ts.isoformat(), "power_w": 600, "import_kwh": import_kwh, "export_kwh": 50.0}


@pytest.mark.parametrize("version", VERSIONS[:-1])
async def test_migrations_keep_data_loaded_at_an_older_schema(
    empty_db: str, version: int, on_timescaledb: bool
) -> None:
    assert len(await migrate(empty_db, up_to=version)) == VERSIONS.index(version) + 1
    now = datetime.now(UTC)
    start = (now - timedelta(days=DAYS)).replace(minute=0, second=0, microsecond=0)
    n = DAYS * 144
    conn = await asyncpg.connect(empty_db)
    try:
        await load(conn, start, n)
        compressed: list[datetime] = []
        if on_timescaledb:  # as production has it: the chunks older than compress_after compressed
            await run_compression_policy(conn)
            compressed = [c["range_start"] for c in await chunks(conn) if c["is_compressed"]]
            assert compressed
        before = await snapshot(conn)

        applied = await migrate(empty_db)
        assert [int(name[:4]) for name in applied] == [v for v in VERSIONS if v > version]
        assert await snapshot(conn) == before
        await assert_rollups_exact(conn, DEVICE)
        if on_timescaledb:
            assert await conn.fetchval(
                "SELECT compression_enabled FROM timescaledb_information.hypertables "
                "WHERE hypertable_name = 'samples'"
            )
            assert (await policy_job(conn, COMPRESSION))["after"] > timedelta(0)
            still = {c["range_start"] for c in await chunks(conn) if c["is_compressed"]}
            assert set(compressed) <= still, "a migration decompressed chunks"

        # The current ingest path on the migrated database: two late readings (between stored ones, in
        # compressed chunks on TimescaleDB), one already stored, one new after the last.
        late = [reading(start + i * STEP + STEP / 2, round(1000 + i / 10 + 0.05, 2)) for i in (3, 200)]
        stored = reading(start + 5 * STEP, 1000.5)
        new = reading(start + n * STEP, round(1000 + n / 10, 1))
        body = {"device_id": DEVICE, "samples": [*late, stored, new]}
        result = await write(conn, SampleBatch.model_validate_json(json.dumps(body)), now)
        assert (result.accepted, result.duplicates) == (3, 1)
        assert await conn.fetchval("SELECT count(*) FROM samples") == n + 3
        await assert_rollups_exact(conn, DEVICE)
        # By hand: n steps of 0.1 kWh from the first reading to the new one, n + 3 readings in all.
        days = await conn.fetchrow(
            "SELECT sum(n) AS n, max(import_kwh_max) - min(import_kwh_min) AS kwh FROM rollup_1d "
            "WHERE device_id = $1",
            DEVICE,
        )
        assert days["n"] == n + 3
        assert round(days["kwh"], 6) == round(n * 0.1, 6)
    finally:
        await conn.close()
