"""Exactly-once storage against the real PostgreSQL: replays, late and unordered data, concurrent
identical batches, counter epochs — and the rollups always equal to what the stored raw rows say."""

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from ingest_kit import BUCKETS, ROLLUP_COLS, assert_rollups_exact
from store_kit import NOW, T0, Store, count, device, make, readings, write

from p1_contracts.models import SampleBatch
from p1_ingest.batch import model_columns
from p1_ingest.fields import FIELD_NAMES
from p1_ingest.sql import INGEST_WRITER
from p1_schema.bulk import fold_stored
from p1_schema.migrate import available_migrations


async def test_replay_stores_nothing_twice(store: Store) -> None:
    dev = device()
    batch = make(dev, readings(300))
    async with store.pool.acquire() as conn:
        first = await store.write(conn, batch, NOW)
        again = await store.write(conn, batch, NOW)
        assert (first.accepted, first.duplicates) == (300, 0)
        assert (again.accepted, again.duplicates) == (0, 300)
        assert first.newest is not None
        assert first.newest.ts == T0 + timedelta(seconds=299 * 7)
        assert await count(conn, dev) == 300
        await assert_rollups_exact(conn, dev)
        n15 = await conn.fetchval("SELECT sum(n) FROM rollup_15m WHERE device_id = $1", dev)
        assert n15 == 300


async def test_late_unordered_overlapping_data_gives_the_in_order_rollups(
    store: Store,
) -> None:
    """The same readings, once in order and once as shuffled overlapping chunks (repeats inside batches,
    late readings landing in old buckets): identical raw rows and identical rollups — identical also to
    the schema's fold of the stored rows all at once (``p1_schema.bulk``, what the bulk loader runs)."""
    ordered, shuffled, recomputed = device(), device(), device()
    data = readings(1200, step_s=3)
    rnd = random.Random(7)
    chunks = []
    for _ in range(25):
        k = rnd.randrange(0, 1100)
        chunk = data[k : k + rnd.randrange(1, 100)]
        chunk = chunk + rnd.sample(chunk, min(5, len(chunk)))  # repeats within the batch
        rnd.shuffle(chunk)
        chunks.append(chunk)
    chunks.append(list(reversed(data)))  # finally everything, newest first
    async with store.pool.acquire() as conn:
        await store.write(conn, make(ordered, data), NOW)
        accepted = 0
        for chunk in chunks:
            result = await store.write(conn, make(shuffled, chunk), NOW)
            assert result.accepted + result.duplicates == len(chunk)
            accepted += result.accepted
        assert accepted == 1200
        await assert_rollups_exact(conn, shuffled)
        cols = ", ".join(("epoch", "flag", *FIELD_NAMES))
        copy = f"INSERT INTO samples (device_id, {cols}) SELECT $2, {cols} FROM samples WHERE device_id = $1"
        await conn.execute(copy, shuffled, recomputed)
        await fold_stored(conn, recomputed, T0, T0 + timedelta(days=1))
        for table, _ in BUCKETS:
            got = [
                [
                    dict(r)
                    for r in await conn.fetch(
                        f"SELECT {ROLLUP_COLS} FROM {table} WHERE device_id = $1 ORDER BY 1, 2", dev
                    )
                ]
                for dev in (ordered, shuffled, recomputed)
            ]
            assert got[0] == got[1] == got[2], table
        dev_row = await conn.fetchrow(
            "SELECT first_seen, last_seen FROM devices WHERE device_id = $1", shuffled
        )
        assert dev_row["first_seen"] == T0
        assert dev_row["last_seen"] == T0 + timedelta(seconds=1199 * 3)


async def test_concurrent_identical_batches_are_stored_once(store: Store) -> None:
    dev = device()
    batch = make(dev, readings(1000))

    async def send() -> tuple[int, int]:
        async with store.pool.acquire() as conn:
            r = await store.write(conn, batch, NOW)
            return r.accepted, r.duplicates

    results = await asyncio.gather(*(send() for _ in range(5)))
    assert sum(a for a, _ in results) == 1000
    assert sum(d for _, d in results) == 4000
    async with store.pool.acquire() as conn:
        assert await count(conn, dev) == 1000
        await assert_rollups_exact(conn, dev)
        assert await conn.fetchval("SELECT count(*) FROM counter_epochs WHERE device_id = $1", dev) == 1


async def test_concurrent_overlapping_batches_of_a_new_device(store: Store) -> None:
    dev = device()
    data = readings(900)
    parts = [data[0:500], data[300:800], data[600:900], data[::2]]

    async def send(part: list[dict[str, Any]]) -> int:
        async with store.pool.acquire() as conn:
            return (await store.write(conn, make(dev, part), NOW)).accepted

    assert sum(await asyncio.gather(*(send(p) for p in parts))) == 900
    async with store.pool.acquire() as conn:
        await assert_rollups_exact(conn, dev)


async def test_counter_reset_and_meter_replacement_start_epochs(store: Store) -> None:
    dev = device()
    first = readings(100)
    reset = readings(100, start=T0 + timedelta(hours=1), imp0=5.0)  # import went down: new counter
    replaced = readings(100, start=T0 + timedelta(hours=2), imp0=1.0)
    async with store.pool.acquire() as conn:
        assert (await store.write(conn, make(dev, first), NOW)).new_epochs == 1
        assert (await store.write(conn, make(dev, reset), NOW)).new_epochs == 1
        assert (await store.write(conn, make(dev, replaced, serial="S2"), NOW)).new_epochs == 1
        epochs = await conn.fetch(
            "SELECT epoch, started_at, reason, meter_serial FROM counter_epochs"
            " WHERE device_id = $1 ORDER BY 1",
            dev,
        )
        assert [(r["epoch"], r["reason"], r["meter_serial"]) for r in epochs] == [
            (0, "first", "S1"),
            (1, "counter_reset", "S1"),
            (2, "meter_replaced", "S2"),
        ]
        assert epochs[1]["started_at"] == T0 + timedelta(hours=1)
        per_epoch = await conn.fetch(
            "SELECT epoch, count(*) FROM samples WHERE device_id = $1 GROUP BY 1 ORDER BY 1", dev
        )
        assert [tuple(r) for r in per_epoch] == [(0, 100), (1, 100), (2, 100)]
        d = await conn.fetchrow("SELECT * FROM devices WHERE device_id = $1", dev)
        assert (d["current_epoch"], d["meter_serial"], d["meter_model"], d["meter_protocol_version"]) == (
            2,
            "S2",
            "ISKRA",
            50,
        )
        # A late reading of the first hour still belongs to epoch 0; one of the second hour to epoch 1.
        late = [
            {**readings(1, start=T0 + timedelta(seconds=3))[0], "import_kwh": 100.0},
            {**readings(1, start=T0 + timedelta(hours=1, seconds=3))[0], "import_kwh": 5.0},
        ]
        result = await store.write(conn, make(dev, late, serial="S2"), NOW)
        assert (result.accepted, result.new_epochs) == (2, 0)
        got = await conn.fetch(
            "SELECT ts, epoch FROM samples WHERE device_id = $1 AND ts = ANY($2)",
            dev,
            [T0 + timedelta(seconds=3), T0 + timedelta(hours=1, seconds=3)],
        )
        assert sorted((r["ts"], r["epoch"]) for r in got) == [
            (T0 + timedelta(seconds=3), 0),
            (T0 + timedelta(hours=1, seconds=3), 1),
        ]
        await assert_rollups_exact(conn, dev)


async def test_a_reset_inside_one_batch(store: Store) -> None:
    dev = device()
    data = readings(50) + readings(50, start=T0 + timedelta(minutes=30), imp0=1.0)
    random.Random(3).shuffle(data)  # the order of the body does not matter, ts order does
    async with store.pool.acquire() as conn:
        result = await store.write(conn, make(dev, data), NOW)
        assert (result.accepted, result.new_epochs) == (100, 2)
        rows = await conn.fetch(
            "SELECT epoch, min(ts), count(*) FROM samples WHERE device_id = $1 GROUP BY 1", dev
        )
        assert sorted((r[0], r[2]) for r in rows) == [(0, 50), (1, 50)]
        await assert_rollups_exact(conn, dev)


async def test_devices_row_and_values_as_sent(store: Store) -> None:
    dev = device()
    sample = {
        "ts": "2026-03-01T11:00:00.25+01:00",
        "power_w": -543,
        "import_kwh": 13779.338,
        "export_kwh": 0,
        "import_t1_kwh": 10830.511,
        "tariff": 2,
        "voltage_l2_v": 229.9,
        "month_peak_ts": "2026-02-04T10:15:00+01:00",
        "water_m3": 0.001,
        "water_ts": "2026-03-01T11:00:00Z",
        "unknown": "ignored",
    }
    async with store.pool.acquire() as conn:
        await store.write(conn, make(dev, [sample], serial=None), NOW)
        row = await conn.fetchrow("SELECT * FROM samples WHERE device_id = $1", dev)
        assert row["ts"] == datetime(2026, 3, 1, 10, 0, 0, 250000, tzinfo=UTC)
        assert row["power_w"] == -543.0
        assert row["import_kwh"] == 13779.338
        assert row["tariff"] == 2
        assert row["voltage_l2_v"] == 229.9
        assert row["voltage_l1_v"] is None
        assert row["month_peak_ts"] == datetime(2026, 2, 4, 9, 15, tzinfo=UTC)
        assert row["water_m3"] == 0.001
        d = await conn.fetchrow("SELECT * FROM devices WHERE device_id = $1", dev)
        assert d["meter_serial"] is None
        assert d["first_seen"] == d["last_seen"] == row["ts"]


async def test_whole_numbers_sent_as_floats(store: Store) -> None:
    """The contract allows 3.0 for tariff and protocol_version (JSON Schema whole numbers); the columns
    are integers."""
    dev = device()
    body = {
        "device_id": dev,
        "meter": {"serial": "S", "protocol_version": 50.0},
        "samples": [
            {"ts": "2026-03-01T11:00:00Z", "power_w": 1, "import_kwh": 1, "export_kwh": 0, "tariff": 3.0}
        ],
    }
    async with store.pool.acquire() as conn:
        await store.write(conn, SampleBatch.model_validate_json(json.dumps(body)), NOW)
        assert await conn.fetchval("SELECT tariff FROM samples WHERE device_id = $1", dev) == 3
        assert (
            await conn.fetchval("SELECT meter_protocol_version FROM devices WHERE device_id = $1", dev) == 50
        )


@pytest.mark.parametrize(
    "gas",
    [
        pytest.param(lambda i: 10.0 + i, id="always-present"),
        pytest.param(lambda i: None, id="always-absent"),
        pytest.param(lambda i: None if i == 7 else 10.0 + i, id="present-then-missing"),
        pytest.param(lambda i: 10.0 + i if i == 7 else None, id="missing-then-present"),
    ],
)
async def test_binary_copy_stores_the_values_as_sent(database_url: str, gas: Any) -> None:
    """The staged COPY stores each contract field as the contract model read it, whatever the NULL
    pattern of a column (always, never, some rows: the encoder's three paths)."""
    samples = [
        {
            **readings(1, start=T0 + timedelta(seconds=i))[0],
            "gas_m3": gas(i),
            "gas_ts": None if gas(i) is None else (T0 + timedelta(hours=i)).isoformat(),
            "tariff": 1 + i % 2,
            # issue 13.6: a text column following gas's NULL pattern, one always present, whole counts
            "gas_unique_id": None if gas(i) is None else f"4E47{i:02X}",
            "water_unique_id": "616e64",
            "power_fail_count": i,
            "voltage_sag_l3_count": float(99999 - i),
            "frequency_hz": 49.9 + i / 100,
            "current_a": -i / 4,
        }
        for i in range(20)
    ]
    dev = device()
    batch = make(dev, samples)
    conn = await asyncpg.connect(database_url)
    try:
        await write(conn, batch, NOW)
        rows = await conn.fetch(
            f"SELECT {', '.join(FIELD_NAMES)} FROM samples WHERE device_id = $1 ORDER BY ts", dev
        )
    finally:
        await conn.close()
    assert {name: [r[name] for r in rows] for name in FIELD_NAMES} == model_columns(batch)
    assert len(rows) == 20


async def test_every_contract_field_has_its_column(database_url: str) -> None:
    """The parser and the staging table follow the contract's field table; the schema must too (a field
    added to openapi.yaml needs a migration)."""
    from p1_ingest.fields import FIELDS

    conn = await asyncpg.connect(database_url)
    try:
        columns = {
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'samples'"
            )
        }
    finally:
        await conn.close()
    assert {f.name for f in FIELDS} <= columns
    assert {"device_id", "ts", "epoch"} <= columns


async def test_local_days_across_dst_midnights_resets_and_late_data(store: Store) -> None:
    """rollup_1d over Brussels' autumn DST day (25 hours) and the midnights around it, with a counter
    reset mid-day, written as shuffled overlapping chunks: equal to a fresh aggregation by local day."""
    dev = device()
    # 2026-10-24 20:00 UTC (22:00 CEST) to 2026-10-26 02:00 UTC (03:00 CET), one reading a minute.
    start = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
    before = readings(600, start=start, step_s=60)
    after = readings(1200, start=start + timedelta(minutes=600), step_s=60, imp0=3.0)  # a reset
    data = before + after
    rnd = random.Random(11)
    chunks = [data[k : k + 250] for k in range(0, len(data), 200)]  # overlapping
    rnd.shuffle(chunks)
    async with store.pool.acquire() as conn:
        for chunk in chunks:
            await store.write(conn, make(dev, chunk), NOW)
        assert await count(conn, dev) == len(data)
        await assert_rollups_exact(conn, dev)
        days = await conn.fetch(
            "SELECT bucket, sum(n)::int AS n FROM rollup_1d WHERE device_id = $1 GROUP BY 1 ORDER BY 1", dev
        )
        # Local midnights: 25 Oct 00:00 CEST = 24 Oct 22:00 UTC; 26 Oct 00:00 CET = 25 Oct 23:00 UTC.
        assert [r["bucket"] for r in days] == [
            datetime(2026, 10, 23, 22, 0, tzinfo=UTC),
            datetime(2026, 10, 24, 22, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 23, 0, tzinfo=UTC),
        ]
        assert [r["n"] for r in days] == [120, 25 * 60, 1800 - 120 - 25 * 60]


async def test_migration_0002_backfills_the_local_days(database_url: str) -> None:
    """A database that had data before rollup_1d existed gets the same rows the ingest path writes."""
    dev = device()
    data = readings(2000, start=datetime(2026, 3, 28, 20, 0, tzinfo=UTC), step_s=90)  # spring DST day
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await write(conn, make(dev, data), NOW)
            written = await conn.fetch(
                f"SELECT {ROLLUP_COLS} FROM rollup_1d WHERE device_id = $1 ORDER BY 1, 2", dev
            )
            assert len(written) == 3
            # Replay migration 0002 on a schema without it (its rollup_1d as of before: none).
            sql = next(m.sql for m in available_migrations() if m.version == 2)
            async with conn.transaction():
                await conn.execute("DROP TABLE rollup_1d, rollup_1d_zone")
                await conn.execute(sql)
            backfilled = await conn.fetch(
                f"SELECT {ROLLUP_COLS} FROM rollup_1d WHERE device_id = $1 ORDER BY 1, 2", dev
            )
            assert [dict(r) for r in backfilled] == [dict(r) for r in written]
            await assert_rollups_exact(conn, dev)
    finally:
        await pool.close()


async def test_late_writes_counts_commits_that_stored_readings_before_the_newest(store: Store) -> None:
    """devices.late_writes versions the query service's cached answers: newer readings, replays and
    the first batch leave it alone; a batch that stores a reading at or before the newest bumps it."""
    dev = device()
    data = readings(300)

    async def late_writes(conn: Any) -> int:
        return int(await conn.fetchval("SELECT late_writes FROM devices WHERE device_id = $1", dev))

    async with store.pool.acquire() as conn:
        await store.write(conn, make(dev, data[100:200]), NOW)
        assert await late_writes(conn) == 0
        await store.write(conn, make(dev, data[200:250]), NOW)  # newer: appended
        await store.write(conn, make(dev, data[100:250]), NOW)  # a replay stores nothing
        assert await late_writes(conn) == 0
        await store.write(conn, make(dev, data[50:60]), NOW)  # before the newest: late
        assert await late_writes(conn) == 1
        await store.write(conn, make(dev, data[0:1] + data[250:300]), NOW)  # late and new together
        assert await late_writes(conn) == 2
        await store.write(conn, make(dev, data[0:1] + data[250:300]), NOW)  # stores nothing
        assert await late_writes(conn) == 2
        await store.write(conn, make(dev, data[0:300]), NOW)  # fills the holes: late
        assert await late_writes(conn) == 3


async def _unannounced_write(conn: Any, dev: str, writer: str | None) -> None:
    """A write as an ingest from before migration 0004 makes it (``writer`` None), or one announcing
    another version."""
    async with conn.transaction():
        if writer is not None:
            await conn.execute("SELECT set_config('p1.ingest_writer', $1, true)", writer)
        await conn.execute(
            "INSERT INTO samples (device_id, ts, power_w, import_kwh, export_kwh) VALUES ($1, $2, 1, 1, 1)",
            dev,
            T0 - timedelta(days=1),
        )
        await conn.execute("UPDATE devices SET last_seen = last_seen WHERE device_id = $1", dev)


async def test_an_older_ingest_cannot_write_to_this_schema(store: Store) -> None:
    """Migration 0004: a writer that does not announce the current version (an ingest from before the
    schema, still serving during a rolling upgrade) fails as 'cannot connect now' — a 503 with
    Retry-After, so its edges upload again — and leaves nothing behind."""
    dev = device()
    async with store.pool.acquire() as conn:
        await store.write(conn, make(dev, readings(10)), NOW)  # the current ingest: announces itself
        # The announcement lasts for its transaction only: the next one, unannounced, is refused.
        with pytest.raises(asyncpg.CannotConnectNowError, match="older than the database schema"):
            await _unannounced_write(conn, dev, None)
        with pytest.raises(asyncpg.CannotConnectNowError):
            await _unannounced_write(conn, dev, "3")
        # The schema's newest migration and this ingest agree on the writer (one number, two places).
        assert await conn.fetchval("SELECT p1_ingest_writer_required()") == INGEST_WRITER
        assert await count(conn, dev) == 10
