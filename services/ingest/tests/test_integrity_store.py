"""Counter integrity through the real write path and PostgreSQL: glitches, counter resets, late readings,
each with the answer computed by hand. A steady 600 W adds 0.01 kWh a minute (600 W × 60 s / 3.6e6)."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from ingest_kit import assert_rollups_exact
from store_kit import NOW, Store, device, make, write

from p1_contracts.models import SampleBatch
from p1_ingest.integrity import DEFAULT_MAX_POWER_W, SLACK_S
from p1_ingest.store import POWER_SETTING

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
RATE = DEFAULT_MAX_POWER_W / 3.6e6  # kWh per second at the largest power
SLACK = RATE * SLACK_S


def minutes(
    n: int, imp0: float, start: datetime = T0, step_s: int = 60, kwh_per_step: float = 0.01
) -> list[dict[str, Any]]:
    """``n`` readings every ``step_s`` from ``start`` at a steady power; export stays 0."""
    return [
        {
            "ts": (start + timedelta(seconds=k * step_s)).isoformat(),
            "power_w": kwh_per_step * 3.6e6 / step_s,
            "import_kwh": round(imp0 + kwh_per_step * k, 6),
            "export_kwh": 0.0,
            "avg_power_15m_w": 600.0,
        }
        for k in range(n)
    ]


async def flags(conn: Any, dev: str) -> dict[datetime, str | None]:
    rows = await conn.fetch("SELECT ts, flag FROM samples WHERE device_id = $1 ORDER BY ts", dev)
    return {r["ts"]: r["flag"] for r in rows}


async def epochs(conn: Any, dev: str) -> list[tuple[int, datetime, str]]:
    rows = await conn.fetch(
        "SELECT epoch, started_at, reason FROM counter_epochs WHERE device_id = $1 ORDER BY epoch", dev
    )
    return [(r["epoch"], r["started_at"], r["reason"]) for r in rows]


async def booked(conn: Any, dev: str) -> float:
    """Import energy the rollups hold: per epoch, the last reading's counter minus the first's."""
    total = await conn.fetchval(
        """SELECT coalesce(sum(hi - lo), 0) FROM (
               SELECT max(import_kwh_max) AS hi, min(import_kwh_min) AS lo FROM rollup_15m
                WHERE device_id = $1 GROUP BY epoch) e""",
        dev,
    )
    return round(float(total), 9)


def at(k: int, step_s: int = 60, start: datetime = T0) -> datetime:
    return start + timedelta(seconds=k * step_s)


async def test_a_glitch_95_33_95_books_nothing_and_is_kept(store: Store) -> None:
    """Home Assistant's 95 → 33 → 95: the 33 is kept, flagged glitch, and counts nowhere — whether the
    reading after it comes in the same batch or in the next one (the glitch is decided then)."""
    data = minutes(30, 95.0)
    data[10]["import_kwh"] = 33.0
    together, apart = device(), device()
    async with store.pool.acquire() as conn:
        result = await store.write(conn, make(together, data), NOW)
        assert (result.accepted, result.new_epochs) == (30, 1)  # the device's first epoch only
        await store.write(conn, make(apart, data[:11]), NOW)
        assert (await flags(conn, apart))[at(10)] == "suspect"  # undecided until the next reading
        await store.write(conn, make(apart, data[11:]), NOW)
        for dev in (together, apart):
            got = await flags(conn, dev)
            assert got[at(10)] == "glitch"
            assert [t for t, f in got.items() if f is not None] == [at(10)]
            assert [e[2] for e in await epochs(conn, dev)] == ["first"]
            assert await booked(conn, dev) == 0.29  # 29 minutes at 600 W, as without the glitch
            assert await conn.fetchval("SELECT sum(n) FROM rollup_15m WHERE device_id = $1", dev) == 29
            await assert_rollups_exact(conn, dev)


async def test_a_single_zero_reading_books_nothing_and_opens_no_epoch(store: Store) -> None:
    mid, last = device(), device()
    data = minutes(20, 13779.0)
    zero_mid = [*data[:10], {**data[10], "import_kwh": 0}, *data[11:]]
    zero_last = [*data[:19], {**data[19], "import_kwh": 0}]
    async with store.pool.acquire() as conn:
        await store.write(conn, make(mid, zero_mid), NOW)
        await store.write(conn, make(last, zero_last), NOW)
        assert (await flags(conn, mid))[at(10)] == "glitch"
        assert (await flags(conn, last))[at(19)] == "suspect"  # nothing after it yet: undecided, unused
        assert await booked(conn, mid) == 0.19
        assert await booked(conn, last) == 0.18
        for dev in (mid, last):
            assert len(await epochs(conn, dev)) == 1
            await assert_rollups_exact(conn, dev)
        run = await conn.fetchrow("SELECT run_start, run_n FROM devices WHERE device_id = $1", last)
        assert (run["run_start"], run["run_n"]) == (at(19), 1)


async def test_counters_alternating_for_an_hour_open_no_epoch(store: Store) -> None:
    """1000 ↔ 1000.5 kWh every second for an hour, in one request (once 7,551 epochs): every 1000.5
    is a glitch, 0 kWh booked, 0 new epochs."""
    dev = device()
    base = [{"ts": at(-1, 1).isoformat(), "power_w": 0, "import_kwh": 1000.0, "export_kwh": 0.0}]
    hour = [
        {
            "ts": at(k, 1).isoformat(),
            "power_w": 0,
            "import_kwh": 1000.5 if k % 2 else 1000.0,
            "export_kwh": 0.0,
        }
        for k in range(3600)
    ]
    async with store.pool.acquire() as conn:
        await store.write(conn, make(dev, base), NOW)
        result = await store.write(conn, make(dev, hour), NOW)
        assert (result.accepted, result.new_epochs) == (3600, 0)
        got = await flags(conn, dev)
        assert sum(1 for f in got.values() if f == "glitch") == 1799
        assert got[at(3599, 1)] == "suspect"  # the last 1000.5: nothing after it yet
        assert await booked(conn, dev) == 0.0
        await assert_rollups_exact(conn, dev)


async def test_a_late_spike_is_a_glitch_and_changes_no_rollup(store: Store) -> None:
    dev = device()
    async with store.pool.acquire() as conn:
        await store.write(conn, make(dev, minutes(60, 500.0)), NOW)
        before = [dict(r) for r in await conn.fetch("SELECT * FROM rollup_15m WHERE device_id = $1", dev)]
        spike = {"ts": at(30, 60) + timedelta(seconds=30), "power_w": 600, "import_kwh": 1e6, "export_kwh": 0}
        fine = {
            "ts": at(40, 60) + timedelta(seconds=30),
            "power_w": 600,
            "import_kwh": 500.405,
            "export_kwh": 0,
        }
        late = [{**r, "ts": r["ts"].isoformat()} for r in (spike, fine)]
        result = await store.write(conn, make(dev, late), NOW)
        assert (result.accepted, result.new_epochs) == (2, 0)
        got = await flags(conn, dev)
        assert (got[spike["ts"]], got[fine["ts"]]) == ("glitch", None)
        after = [dict(r) for r in await conn.fetch("SELECT * FROM rollup_15m WHERE device_id = $1", dev)]
        assert sum(r["n"] for r in after) == sum(r["n"] for r in before) + 1  # the good late reading only
        assert max(r["import_kwh_max"] for r in after) == 500.59
        assert await booked(conn, dev) == 0.59
        await assert_rollups_exact(conn, dev)


async def test_a_real_replacement_opens_one_epoch_at_the_first_low_reading(store: Store) -> None:
    """13,779 kWh, then a counter from 2 kWh that keeps counting for 10 minutes: one new epoch from the
    first low reading, and the energy is both sides' increases (0.30 + 0.10 kWh). Sent 3 readings a
    batch, so the pending readings are confirmed by a later batch and folded into the rollups then."""
    whole, in_threes = device(), device()
    data = minutes(31, 13779.0) + minutes(11, 2.0, start=at(31))
    async with store.pool.acquire() as conn:
        result = await store.write(conn, make(whole, data), NOW)
        assert result.new_epochs == 2  # the first one and the reset
        for k in range(0, len(data), 3):
            await store.write(conn, make(in_threes, data[k : k + 3]), NOW)
        for dev in (whole, in_threes):
            assert await epochs(conn, dev) == [(0, T0, "first"), (1, at(31), "counter_reset")]
            assert all(f is None for f in (await flags(conn, dev)).values())
            assert await booked(conn, dev) == 0.40
            per_epoch = await conn.fetch(
                "SELECT epoch, count(*) FROM samples WHERE device_id = $1 GROUP BY 1 ORDER BY 1", dev
            )
            assert [tuple(r) for r in per_epoch] == [(0, 31), (1, 11)]
            await assert_rollups_exact(conn, dev)


async def test_a_drop_that_lasts_less_than_five_minutes_is_a_glitch(store: Store) -> None:
    """Low readings for 4 minutes, then the old level again: no epoch, the low ones are glitches."""
    dev = device()
    data = minutes(10, 200.0) + minutes(5, 2.0, start=at(10)) + minutes(10, 200.15, start=at(15))
    async with store.pool.acquire() as conn:
        await store.write(conn, make(dev, data), NOW)
        assert len(await epochs(conn, dev)) == 1
        got = await flags(conn, dev)
        assert [t for t, f in got.items() if f == "glitch"] == [at(k) for k in range(10, 15)]
        assert await booked(conn, dev) == 0.24  # 200.00 → 200.24


async def test_a_changed_serial_opens_an_epoch_at_once(store: Store) -> None:
    dev = device()
    async with store.pool.acquire() as conn:
        await store.write(conn, make(dev, minutes(5, 900.0)), NOW)
        result = await store.write(conn, make(dev, minutes(1, 0.5, start=at(5)), serial="S2"), NOW)
        assert result.new_epochs == 1
        assert [e[1:] for e in await epochs(conn, dev)] == [(T0, "first"), (at(5), "meter_replaced")]
        assert (await flags(conn, dev))[at(5)] is None


async def test_a_reading_among_pending_suspects_is_replayed_with_them(store: Store) -> None:
    """Good up to minute 4; low readings at 5 and 7 (a run); then a reading at minute 6 that continues
    the good level: in time order it returns to the old level after the 5, so the 5 is a glitch and the
    7 starts a new run."""
    dev = device()
    good = minutes(5, 300.0)
    low = [{**minutes(1, 1.0, start=at(k))[0]} for k in (5, 7)]
    back = minutes(1, 300.06, start=at(6))
    async with store.pool.acquire() as conn:
        await store.write(conn, make(dev, good + low), NOW)
        await store.write(conn, make(dev, back), NOW)
        got = await flags(conn, dev)
        assert (got[at(5)], got[at(6)], got[at(7)]) == ("glitch", None, "suspect")
        d = await conn.fetchrow("SELECT good_ts, run_start, run_n FROM devices WHERE device_id = $1", dev)
        assert (d["good_ts"], d["run_start"], d["run_n"]) == (at(6), at(7), 1)
        await assert_rollups_exact(conn, dev)


async def test_late_readings_cannot_use_the_slack_twice(store: Store) -> None:
    """Stored: 100 kWh at 0 s and 100 + r·1800 at 3600 s (half the largest power for an hour). A late
    reading may not rise faster than the largest power from its good neighbour (without the slack:
    neighbour checks with it would let one late batch after another climb by S each). The second late
    reading of one batch is checked against the first (merged with what is stored)."""
    dev = device()
    ends = [
        {"ts": at(0, 1).isoformat(), "power_w": 0, "import_kwh": 100.0, "export_kwh": 0},
        {"ts": at(3600, 1).isoformat(), "power_w": 0, "import_kwh": 100.0 + RATE * 1800, "export_kwh": 0},
    ]
    too_fast = {
        "ts": at(1, 1).isoformat(),
        "power_w": 0,
        "import_kwh": 100.0 + RATE + SLACK / 2,
        "export_kwh": 0,
    }
    fine = {"ts": at(1000, 1).isoformat(), "power_w": 0, "import_kwh": 100.5, "export_kwh": 0}
    going_down = {"ts": at(1001, 1).isoformat(), "power_w": 0, "import_kwh": 100.3, "export_kwh": 0}
    async with store.pool.acquire() as conn:
        await store.write(conn, make(dev, ends), NOW)
        await store.write(conn, make(dev, [too_fast]), NOW)
        await store.write(conn, make(dev, [going_down, fine]), NOW)
        got = await flags(conn, dev)
        assert (got[at(1, 1)], got[at(1000, 1)], got[at(1001, 1)]) == ("glitch", None, "glitch")


async def test_late_readings_meet_the_rollup_where_raw_readings_are_gone(store: Store) -> None:
    """Raw readings of minutes 10–49 dropped (as retention does); the quarter 10:30–10:45 survives in
    rollup_15m with its first (10:30, 500.30) and last (10:44, 500.44) reading. A late 500.40 at 10:30:05
    is 0.1 kWh in 5 s (72 kW) after that first reading: a glitch, though the nearest raw readings
    (10:09 500.09, 10:50 500.50) would allow it; 500.303 at 10:30:30 is good."""
    dev = device()
    async with store.pool.acquire() as conn:
        await store.write(conn, make(dev, minutes(60, 500.0)), NOW)
        await conn.execute(
            "DELETE FROM samples WHERE device_id = $1 AND ts >= $2 AND ts < $3", dev, at(10), at(50)
        )
        spike = {
            "ts": (at(30) + timedelta(seconds=5)).isoformat(),
            "power_w": 0,
            "import_kwh": 500.40,
            "export_kwh": 0,
        }
        ok = {
            "ts": (at(30) + timedelta(seconds=30)).isoformat(),
            "power_w": 0,
            "import_kwh": 500.303,
            "export_kwh": 0,
        }
        await store.write(conn, make(dev, [spike, ok]), NOW)
        got = await flags(conn, dev)
        assert got[at(30) + timedelta(seconds=5)] == "glitch"
        assert got[at(30) + timedelta(seconds=30)] is None


async def test_max_power_comes_from_the_connection(database_url: str) -> None:
    """MAX_POWER_W reaches the write path as the session setting the service sets on its pool: at
    1,000 W a steady 1,200 W (0.02 kWh a minute) is impossible — each reading is too far from the one
    before it, so each run of suspects ends at the next (glitch) — at the default it is fine."""
    strict, default = device(), device()
    data = minutes(10, 10.0, kwh_per_step=0.02)
    conn = await asyncpg.connect(database_url, server_settings={POWER_SETTING: "1000"})
    try:
        await write(
            conn, SampleBatch.model_validate_json(json.dumps({"device_id": strict, "samples": data})), NOW
        )
        assert list((await flags(conn, strict)).values()) == [None] + ["glitch"] * 8 + ["suspect"]
    finally:
        await conn.close()
    conn = await asyncpg.connect(database_url)
    try:
        await write(
            conn, SampleBatch.model_validate_json(json.dumps({"device_id": default, "samples": data})), NOW
        )
        assert all(f is None for f in (await flags(conn, default)).values())
        power = await conn.fetchval("SELECT integrity_power_w FROM devices WHERE device_id = $1", default)
        assert power == DEFAULT_MAX_POWER_W
    finally:
        await conn.close()
