"""Migration 0005 on a database that holds what the bugs left behind (readings at 0001-01-01 and in 2999,
a device whose first_seen is -infinity), and the device rebuild (the range constraints it adds are the
schema's: libs/schema/tests/test_range.py)."""

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from ingest_kit import assert_rollups_exact
from store_kit import NOW, device, make, write

from p1_contracts.timerange import EARLIEST, LATEST
from p1_ingest.integrity import Limits
from p1_ingest.rebuild import migrate, rebuild_device
from p1_schema.migrate import available_migrations
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

T0 = datetime(2026, 3, 1, tzinfo=UTC)
YEAR_1 = datetime(1, 1, 1, tzinfo=UTC)  # asyncpg sends it as -infinity
# A hypertable refuses year 1 and -infinity itself ("timestamp out of range"): there the early bad
# readings are in 1970 and 1999 instead (outside the range all the same).
EARLY = {
    False: (YEAR_1, "-infinity", "0001-01-01 00:00:00+00"),
    True: (datetime(1970, 1, 1, tzinfo=UTC), "1970-01-01 00:00:00+00", "1999-06-01 00:00:00+00"),
}
YEAR_2999 = datetime(2999, 1, 1, tzinfo=UTC)


@pytest.fixture
async def at_0004() -> AsyncIterator[str]:
    """A fresh database migrated to 0004 only (the schema the bad rows were written into)."""
    url = await create_database(pg_server_url(), prefix="p1_m5")
    try:
        await migrate(url, up_to=4)
        yield url
    finally:
        await drop_database(url)


async def _legacy_device(conn: Any, dev: str, first_seen: str, extra: list[tuple[datetime, float]]) -> None:
    """As ingest before 0005 left it: 30 readings a minute apart from T0 at 600 W (100.00 → 100.29 kWh)
    plus ``extra`` (ts, import), no rollups but a stale one, the device row spanning all of them."""
    rows = [(T0 + timedelta(minutes=k), 100 + k / 100) for k in range(30)] + extra
    await conn.executemany(
        "INSERT INTO samples (device_id, ts, power_w, import_kwh, export_kwh) VALUES ($1, $2, 600, $3, 0)",
        [(dev, t, v) for t, v in rows],
    )
    last = max(t for t, _ in rows)
    await conn.execute(
        f"""INSERT INTO devices (device_id, first_seen, last_seen, last_ts, last_import_kwh, last_export_kwh,
                                 meter_serial)
            VALUES ($1, {first_seen}, $2, $2, 1, 0, 'S1')""",
        dev,
        last,
    )
    await conn.execute(
        "INSERT INTO counter_epochs (device_id, epoch, started_at, reason, meter_serial)"
        " VALUES ($1, 0, $2, 'first', 'S1')",
        dev,
        min(t for t, _ in rows),
    )
    for bucket in (YEAR_1, T0):  # one outside the range, one stale (n 999)
        await conn.execute(
            """INSERT INTO rollup_15m (device_id, bucket, epoch, n, power_sum, power_min, power_max,
                   power_import_sum, first_ts, last_ts, import_kwh_min, import_kwh_max)
               VALUES ($1, $2, 0, 999, 0, 0, 0, 0, $2, $2, 1, 1)""",
            dev,
            bucket,
        )


async def test_0005_moves_out_of_range_readings_and_repairs_the_devices(
    at_0004: str, redis_url: str, on_timescaledb: bool
) -> None:
    early, early_text, gone_text = EARLY[on_timescaledb]
    conn = await asyncpg.connect(at_0004)
    try:
        await _legacy_device(conn, "m5-early", "'-infinity'", [(early, 1.0)])
        await _legacy_device(conn, "m5-late", "'2026-03-01 00:00:00+00'", [(YEAR_2999, 5.0)])
        await conn.execute(
            "INSERT INTO samples (device_id, ts, power_w, import_kwh, export_kwh)"
            " VALUES ('m5-gone', $1::text::timestamptz, 1, 7, 0)",  # as text: year 1 itself
            gone_text,
        )
        await conn.execute(
            "INSERT INTO devices (device_id, first_seen, last_seen, last_ts)"
            " VALUES ('m5-gone', '-infinity', $1, $1)",
            YEAR_1,
        )
        await conn.execute(
            "INSERT INTO devices (device_id, first_seen, last_seen, last_ts, last_import_kwh,"
            " last_export_kwh) VALUES ('m5-fine', $1, $1, $1, 3, 0)",
            T0,
        )
        fine_before = dict(await conn.fetchrow("SELECT * FROM devices WHERE device_id = 'm5-fine'"))
    finally:
        await conn.close()

    # 0005 and every later one (the rebuild runs after the newest: p1_schema.migrate)
    assert await migrate(at_0004) == [m.name for m in available_migrations()][4:]

    conn = await asyncpg.connect(at_0004, server_settings={"TimeZone": "UTC"})
    try:
        # As text: asyncpg sends datetime(1, 1, 1) as -infinity (how the bug made first_seen -infinity).
        moved = await conn.fetch(
            "SELECT device_id, ts::text, import_kwh, moved_at FROM samples_out_of_range ORDER BY 1"
        )
        assert [(r["device_id"], r["ts"], r["import_kwh"]) for r in moved] == [
            ("m5-early", early_text, 1.0),
            ("m5-gone", gone_text, 7.0),
            ("m5-late", "2999-01-01 00:00:00+00", 5.0),
        ]
        assert all(r["moved_at"] is not None for r in moved)
        assert (
            await conn.fetchval("SELECT count(*) FROM samples WHERE ts < $1 OR ts >= $2", EARLIEST, LATEST)
            == 0
        )
        devices = {r["device_id"]: r for r in await conn.fetch("SELECT * FROM devices")}
        assert sorted(devices) == ["m5-early", "m5-fine", "m5-late"]  # nothing was left of m5-gone
        for dev in ("m5-early", "m5-late"):
            d = devices[dev]
            assert (d["first_seen"], d["last_seen"], d["last_ts"]) == (
                T0,
                T0 + timedelta(minutes=29),
                T0 + timedelta(minutes=29),
            )
            assert (d["good_ts"], d["good_import_kwh"], d["last_import_kwh"]) == (
                T0 + timedelta(minutes=29),
                100 + 29 / 100,
                100 + 29 / 100,
            )
            assert d["late_writes"] >= 1  # cached answers about the device are stale
            epochs = await conn.fetch(
                "SELECT epoch, started_at, reason, meter_serial FROM counter_epochs WHERE device_id = $1", dev
            )
            assert [tuple(r) for r in epochs] == [(0, T0, "first", "S1")]
            assert await conn.fetchval("SELECT sum(n) FROM rollup_15m WHERE device_id = $1", dev) == 30
            await assert_rollups_exact(conn, dev)
        fine_after = dict(await conn.fetchrow("SELECT * FROM devices WHERE device_id = 'm5-fine'"))
        assert {k: fine_after[k] for k in fine_before} == fine_before  # not rebuilt, not touched
        assert await conn.fetchval("SELECT count(*) FROM device_rebuilds") == 0
    finally:
        await conn.close()
    await _device_works_again(at_0004, redis_url)


async def _device_works_again(url: str, redis_url: str) -> None:
    """Ingest takes the repaired device's next readings; query lists it (both were failing: 500, 422)."""
    ingest_port, query_port = free_port(), free_port()
    ingest = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(ingest_port)],
        {
            "DATABASE_URL": url,
            "DEVICE_TOKENS": "tok-e:m5-early",
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
        },
        ingest_port,
    ).start()
    query = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(query_port)],
        {"DATABASE_URL": url, "READ_TOKENS": "tok-r:*", "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"},
        query_port,
    ).start()
    try:
        samples = [
            {
                "ts": (T0 + timedelta(minutes=30 + k)).isoformat(),
                "power_w": 600,
                "import_kwh": 100.30 + k / 100,
                "export_kwh": 0,
            }
            for k in range(5)
        ]
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.post(
                f"{ingest.base_url}/v1/samples",
                content=json.dumps({"device_id": "m5-early", "samples": samples}),
                headers={"Authorization": "Bearer tok-e", "Content-Type": "application/json"},
            )
            assert r.status_code == 200, r.text
            assert r.json() == {"accepted": 5, "duplicates": 0}
            listed = await http.get(f"{query.base_url}/v1/devices", headers={"Authorization": "Bearer tok-r"})
        assert listed.status_code == 200, listed.text
        early = next(d for d in listed.json() if d["device_id"] == "m5-early")
        assert datetime.fromisoformat(early["first_seen"]) == T0
        assert datetime.fromisoformat(early["last_seen"]) == T0 + timedelta(minutes=34)
    finally:
        assert ingest.stop() in CLEAN_EXITS, ingest.logs()
        assert query.stop() in CLEAN_EXITS, query.logs()


async def test_rebuild_command_repairs_what_the_old_epoch_rule_booked(database_url: str) -> None:
    """95 → 33 → 95 stored by the old rule: the 33 and the next reading each opened an epoch (+62 kWh
    booked). ``p1-ingest rebuild`` replays the readings: one epoch, the 33 a glitch, 0.29 kWh."""
    dev = device()
    conn = await asyncpg.connect(database_url)
    try:
        rows = [
            (
                T0 + timedelta(minutes=k),
                33.0 if k == 10 else 95 + k / 100,
                0 if k < 10 else 1 if k == 10 else 2,
            )
            for k in range(30)
        ]
        await conn.executemany(
            "INSERT INTO samples (device_id, ts, epoch, power_w, import_kwh, export_kwh)"
            " VALUES ($1, $2, $4, 600, $3, 0)",
            [(dev, *r) for r in rows],
        )
        await conn.execute(
            "INSERT INTO devices (device_id, first_seen, last_seen, last_ts, current_epoch)"
            " VALUES ($1, $2, $3, $3, 2)",
            dev,
            T0,
            T0 + timedelta(minutes=29),
        )
        await conn.executemany(
            "INSERT INTO counter_epochs (device_id, epoch, started_at, reason) VALUES ($1, $2, $3, $4)",
            [
                (dev, 0, T0, "first"),
                (dev, 1, rows[10][0], "counter_reset"),
                (dev, 2, rows[11][0], "counter_reset"),
            ],
        )
        done = await asyncio.to_thread(
            subprocess.run,
            [console_script("p1-ingest"), "rebuild", dev],
            env={"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert f"{dev}: rebuilt, 30 reading(s) replayed" in done.stdout
        epochs = await conn.fetch("SELECT epoch, reason FROM counter_epochs WHERE device_id = $1", dev)
        assert [tuple(r) for r in epochs] == [(0, "first")]
        flags = await conn.fetch("SELECT ts FROM samples WHERE device_id = $1 AND flag = 'glitch'", dev)
        assert [r["ts"] for r in flags] == [rows[10][0]]
        hi_lo = await conn.fetchrow(
            "SELECT max(import_kwh_max) - min(import_kwh_min) AS e FROM rollup_15m WHERE device_id = $1", dev
        )
        assert round(hi_lo["e"], 9) == 0.29
        await assert_rollups_exact(conn, dev)
    finally:
        await conn.close()


async def test_rebuild_keeps_what_raw_retention_left_only_in_the_rollups(database_url: str) -> None:
    """Three days of readings (every 10 minutes at 600 W: 0.1 kWh each), the meter replaced (serial S2,
    counter 70 kWh lower) at noon of the third; the raw rows of the first day and an hour dropped, as
    retention does. The rebuild starts at the first local midnight after the first raw reading (the
    third day): rollups and epochs before it stay exactly as they were, the third day is rebuilt and
    its replacement replayed where it was."""
    dev = device()
    start = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)  # 2 June 00:00 in Brussels
    since = start + timedelta(days=2)

    def reading(k: int) -> dict[str, Any]:
        imp = 50 + k / 10 - (70 if k >= 360 else 0)
        return {
            "ts": (start + timedelta(minutes=10 * k)).isoformat(),
            "power_w": 600,
            "import_kwh": round(imp, 3),
            "export_kwh": 0,
        }

    async def rollups_before(conn: Any) -> dict[str, list[dict[str, Any]]]:
        return {
            t: [
                dict(r)
                for r in await conn.fetch(
                    f"SELECT * FROM {t} WHERE device_id = $1 AND bucket < $2 ORDER BY bucket", dev, since
                )
            ]
            for t in ("rollup_15m", "rollup_1h", "rollup_1d")
        }

    async def epochs(conn: Any) -> list[tuple[Any, ...]]:
        rows = await conn.fetch(
            "SELECT epoch, started_at, reason, meter_serial FROM counter_epochs"
            " WHERE device_id = $1 ORDER BY 1",
            dev,
        )
        return [tuple(r) for r in rows]

    conn = await asyncpg.connect(database_url)
    try:
        await write(conn, make(dev, [reading(k) for k in range(360)]), NOW)
        await write(conn, make(dev, [reading(k) for k in range(360, 432)], serial="S2"), NOW)
        await conn.execute(
            "DELETE FROM samples WHERE device_id = $1 AND ts < $2", dev, start + timedelta(days=1, hours=1)
        )
        kept, epochs_before = await rollups_before(conn), await epochs(conn)
        assert [e[2:] for e in epochs_before] == [("first", "S1"), ("meter_replaced", "S2")]
        report = await rebuild_device(conn, dev, Limits(), NOW)
        assert (report.outcome, report.since, report.readings) == ("rebuilt", since, 144)
        assert await rollups_before(conn) == kept
        assert await epochs(conn) == epochs_before
        rebuilt = await conn.fetch(
            """SELECT epoch, sum(n)::int AS n, min(import_kwh_min) AS lo, max(import_kwh_max) AS hi
                 FROM rollup_15m WHERE device_id = $1 AND bucket >= $2 GROUP BY 1 ORDER BY 1""",
            dev,
            since,
        )
        assert [tuple(r) for r in rebuilt] == [(0, 72, 78.8, 85.9), (1, 72, 16.0, 23.1)]
    finally:
        await conn.close()
