"""Settled dynamic price sums (migration 0012, ``p1_query.price_settle``): answers from settled hours equal
answers from the quarters, whatever the range, and a row stops counting the moment a late reading or a
price change touches what it was made from. Readings go through the real ingest (late data is ingest's
to judge); prices by single statements, as the loader writes them."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from prometheus_client import CollectorRegistry
from query_scenes import Meter, query_env, steps, upload

from p1_query import costs_sql, price_sums
from p1_query.costs_sql import BucketSums, quarter_sums
from p1_query.price_settle import PriceSettler, settle_all
from p1_query.price_sums import VALID_SQL, dynamic_sums
from p1_schema.bulk import load_device
from p1_schema.migrate import migrate
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, eventually, free_port
from p1_servicekit.testing_db import PgCluster

DEVICE = "q-price-sums"
BOTH = ("import", "export")
START = datetime(2026, 5, 10, 22, tzinfo=UTC)
GAP = (datetime(2026, 5, 12, 10, tzinfo=UTC), datetime(2026, 5, 12, 12, tzinfo=UTC))
END = datetime(2026, 5, 14, 2, tzinfo=UTC)  # the newest reading: UTC days 05-10 to 05-13 can settle
SETTLED_DAYS = 4
BRUSSELS = ZoneInfo("Europe/Brussels")
KATHMANDU = ZoneInfo("Asia/Kathmandu")  # +05:45: its days are off the hour grid


def _meter() -> Meter:
    """Offtake that changes every few hours, injection around noon, and two hours without readings
    (05-12 10:00–12:00Z) in which 2 kWh were taken: the interpolation spreads them evenly."""
    meter = Meter(DEVICE)
    power = steps(
        (START, 800.0),
        (datetime(2026, 5, 11, 3, tzinfo=UTC), 2500.0),
        (datetime(2026, 5, 11, 11, tzinfo=UTC), -1500.0),
        (datetime(2026, 5, 11, 14, tzinfo=UTC), 400.0),
        (datetime(2026, 5, 12, 18, tzinfo=UTC), 3100.0),
        (datetime(2026, 5, 13, 1, tzinfo=UTC), -700.0),
        (datetime(2026, 5, 13, 5, tzinfo=UTC), 1200.0),
    )
    meter.scene(START, int((GAP[0] - START).total_seconds()) // 60 + 1, power)
    meter.import_kwh += 2.0
    meter.scene(GAP[1], int((END - GAP[1]).total_seconds()) // 60 + 1, power)
    return meter


# Quarter-hour prices from START to 05-13 22:00Z (quarter 50 missing), then four hourly ones; export
# at a third of import where known, unknown on the first day's evening.
PRICES_SQL = """
INSERT INTO energy_prices (start, "end", import_eur_per_kwh, export_eur_per_kwh)
SELECT s, s + interval '15 minutes', 0.05 + 0.0007 * (k % 97), CASE WHEN k BETWEEN 60 AND 70 THEN NULL
       ELSE round((0.05 + 0.0007 * (k % 97)) / 3, 6) END
  FROM generate_series(0, 287) k, LATERAL (SELECT $1::timestamptz + k * interval '15 minutes' AS s) q
 WHERE k <> 50
UNION ALL
SELECT s, s + interval '1 hour', 0.21 + 0.01 * h, 0.02
  FROM generate_series(0, 3) h, LATERAL (SELECT $2::timestamptz + h * interval '1 hour' AS s) q"""


@pytest.fixture(scope="module")
async def sums_db(loaded: str, ingest_client: httpx.AsyncClient) -> str:
    await _meter().upload(ingest_client)
    conn = await asyncpg.connect(loaded)
    try:
        await conn.execute(PRICES_SQL, START, datetime(2026, 5, 13, 22, tzinfo=UTC))
        await conn.execute(
            "INSERT INTO tariff_plans (name, device_id, valid_from, tz, starts_at, import_dynamic,"
            " export_dynamic, import_markup)"
            " VALUES ('dyn-sums', $1, '2026-05-01', 'UTC', $2, true, true, 0.01)",
            DEVICE,
            datetime(2026, 5, 1, tzinfo=UTC),
        )
    finally:
        await conn.close()
    return loaded


@pytest.fixture
async def conn(sums_db: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(sums_db)
    try:
        yield c
    finally:
        await c.close()


def _local_days(tz: ZoneInfo, first: str, days: int) -> list[datetime]:
    start = datetime.fromisoformat(first).replace(tzinfo=tz)
    return [(start + timedelta(days=k)).astimezone(UTC) for k in range(days + 1)]


def _hours(first: datetime, hours: int) -> list[datetime]:
    return [first + timedelta(hours=k) for k in range(hours + 1)]


# (bounds, segment starts): local days, hours cut by a plan change at noon, a range from before the
# first reading into the unsettled tail, and days of a zone off the hour grid.
RANGES = [
    (_local_days(BRUSSELS, "2026-05-11", 4), None),
    (_hours(datetime(2026, 5, 12, tzinfo=UTC), 24), datetime(2026, 5, 12, 12, tzinfo=UTC)),
    (_hours(datetime(2026, 5, 10, 12, tzinfo=UTC), 86), None),
    (_local_days(KATHMANDU, "2026-05-11", 3), None),
]


async def _answers(c: asyncpg.Connection) -> list[tuple[BucketSums, BucketSums]]:
    """For each range: (dynamic_sums as answered, quarter_sums: every quarter read)."""
    out = []
    for bounds, cut in RANGES:
        segments = [bounds[0]] if cut is None else [bounds[0], cut]
        out.append(
            (
                await dynamic_sums(c, DEVICE, bounds, segments, BOTH),
                await quarter_sums(c, DEVICE, bounds, segments, BOTH),
            )
        )
    return out


def _same(a: BucketSums, b: BucketSums) -> None:
    assert a.keys() == b.keys()
    for key, pair in a.items():
        for x, y in zip(pair, b[key], strict=True):
            assert x is not None
            assert y is not None
            for f in ("market", "priced", "unpriced"):
                assert abs(getattr(x, f) - getattr(y, f)) < 1e-9, (key, x, y)


async def _valid_days(c: asyncpg.Connection) -> list[str]:
    rows = await c.fetch(
        f"SELECT s.day FROM price_sums s WHERE s.device_id = $1 AND {VALID_SQL} ORDER BY s.day", DEVICE
    )
    return [r["day"].astimezone(UTC).date().isoformat() for r in rows]


async def _settled_all(c: asyncpg.Connection) -> list[str]:
    days = await _valid_days(c)
    return days if len(days) == SETTLED_DAYS else []


async def _settle(c: asyncpg.Connection) -> None:
    await settle_all(c)
    assert await _valid_days(c) == ["2026-05-10", "2026-05-11", "2026-05-12", "2026-05-13"]


async def test_settled_sums_equal_the_quarters_for_any_range(conn: asyncpg.Connection) -> None:
    await conn.execute("DELETE FROM price_sums WHERE device_id = $1", DEVICE)
    before = await _answers(conn)
    for answered, quarters in before:
        _same(answered, quarters)
    await _settle(conn)
    after = await _answers(conn)
    for (answered, quarters), (old, _) in zip(after, before, strict=True):
        _same(answered, quarters)
        _same(answered, old)
    # Not everything is trivially equal: prices vary, a price is missing, and there is injection.
    day_sums = after[0][0]
    assert any(pair[0] is not None and pair[0].unpriced > 0 for pair in day_sums.values())
    assert any(pair[1] is not None and pair[1].market > 0 for pair in day_sums.values())


@pytest.mark.parametrize("settled", [False, True])
async def test_a_century_by_month_reads_only_the_device_s_own_days(
    conn: asyncpg.Connection, settled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every month of 2000–2099: May 2026 (all the readings) as when asked alone, every other month
    zero — computed over the readings' own quarters, not a century of them (which took 40 s and
    800 MB of a query worker for one request)."""
    spans: list[timedelta] = []
    real = costs_sql.quarter_prefix

    async def recorded(c: Any, device: str, start: datetime, end: datetime, directions: Any) -> Any:
        spans.append(end - start)
        return await real(c, device, start, end, directions)

    monkeypatch.setattr(costs_sql, "quarter_prefix", recorded)
    monkeypatch.setattr(price_sums, "quarter_prefix", recorded)
    await conn.execute("DELETE FROM price_sums WHERE device_id = $1", DEVICE)
    if settled:
        await _settle(conn)
    months = [datetime(y, m, 1, tzinfo=UTC) for y in range(2000, 2100) for m in range(1, 13)]
    months.append(datetime(2100, 1, 1, tzinfo=UTC))
    may = (2026 - 2000) * 12 + 4
    alone = await dynamic_sums(conn, DEVICE, months[may : may + 2], [months[may]], BOTH)
    for answer in (
        await dynamic_sums(conn, DEVICE, months, [months[0]], BOTH),
        await quarter_sums(conn, DEVICE, months, [months[0]], BOTH),
    ):
        assert len(answer) == len(months) - 1
        _same({(0, 0): answer[(may, 0)]}, alone)
        rest = [pair for (j, _), pair in answer.items() if j != may]
        assert {(d.market, d.priced, d.unpriced) for pair in rest for d in pair if d} == {(0.0, 0.0, 0.0)}
    # The readings span 05-10 22:00 to 05-14 02:00 (its last quarter, or hour, reaches past it): no
    # stretch of quarters read is longer than that.
    assert spans
    assert max(spans) <= END - START + timedelta(hours=1)


async def test_a_late_reading_makes_the_rows_stale_until_settled_again(
    conn: asyncpg.Connection, ingest_client: httpx.AsyncClient
) -> None:
    await _settle(conn)
    old = (await _answers(conn))[1][0]
    before = await conn.fetchrow(
        "SELECT import_kwh, export_kwh FROM samples WHERE device_id = $1 AND ts <= $2"
        " ORDER BY ts DESC LIMIT 1",
        DEVICE,
        GAP[0],
    )
    late = {
        "ts": (GAP[0] + timedelta(minutes=15)).isoformat(),
        "power_w": 1000.0,
        "import_kwh": round(before["import_kwh"] + 1.9, 9),
        "export_kwh": before["export_kwh"],
    }
    await upload(ingest_client, DEVICE, [late], {"serial": "M1", "model": "TEST", "protocol_version": 50})
    assert await _valid_days(conn) == []  # late data: the device's rows no longer count
    new = await _answers(conn)
    for answered, quarters in new:
        _same(answered, quarters)
    # The 2 kWh of the gap now lie mostly in its first quarter, not spread evenly: another cost.
    assert abs(new[1][0][(10, 0)][0].market - old[(10, 0)][0].market) > 0.01  # type: ignore[union-attr]
    await _settle(conn)
    for answered, quarters in await _answers(conn):
        _same(answered, quarters)


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE energy_prices SET import_eur_per_kwh = 0.9 WHERE start = '2026-05-11T10:00:00Z'",
        "DELETE FROM energy_prices WHERE start = '2026-05-11T10:00:00Z'",
        "INSERT INTO energy_prices VALUES ('2026-05-11T10:00:00Z', '2026-05-11T10:15:00Z', 0.9, 0.1)"
        " ON CONFLICT (start) DO UPDATE SET import_eur_per_kwh = 0.7",
    ],
)
async def test_a_price_change_makes_its_day_stale(conn: asyncpg.Connection, change: str) -> None:
    await _settle(conn)
    old = (await _answers(conn))[0][0]
    await conn.execute(change)
    assert await _valid_days(conn) == ["2026-05-10", "2026-05-12", "2026-05-13"]
    new = await _answers(conn)
    for answered, quarters in new:
        _same(answered, quarters)
    # Brussels 05-11 (bucket 0) holds 10:00Z: its cost moved.
    assert new[0][0][(0, 0)][0] != old[(0, 0)][0]


async def test_the_query_process_settles_by_itself(sums_db: str, conn: asyncpg.Connection) -> None:
    await conn.execute("DELETE FROM price_sums WHERE device_id = $1", DEVICE)
    port = free_port()
    env = {**query_env(sums_db, None), "PRICE_SUMS_INTERVAL_S": "0.2"}
    proc = ServiceProcess([console_script("p1-query"), "serve", "--port", str(port)], env, port).start()
    try:
        days = await eventually(
            lambda: _settled_all(conn), 30, "the query process to settle q-price-sums's four days"
        )
        assert len(days) == SETTLED_DAYS
        async with httpx.AsyncClient(timeout=10) as client:
            metrics = (await client.get(f"{proc.base_url}/metrics")).text
        settled = [
            line for line in metrics.splitlines() if line.startswith("p1_query_price_sums_settled_days_total")
        ]
        assert settled
        assert float(settled[0].split()[-1]) >= SETTLED_DAYS
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()


async def test_a_database_outage_fails_a_pass_and_the_next_one_settles() -> None:
    """The settler on its own throwaway cluster: down, a pass fails, is counted and raises nothing;
    back up, the next pass settles."""
    cluster = PgCluster().init().start()
    try:
        await migrate(cluster.url)
        seed = await asyncpg.connect(cluster.url)
        try:
            await load_device(seed, DEVICE, _meter().columns(), "M1")
            await seed.execute(PRICES_SQL, START, datetime(2026, 5, 13, 22, tzinfo=UTC))
            await seed.execute(
                "INSERT INTO tariff_plans (name, device_id, valid_from, tz, starts_at, import_dynamic,"
                " export_dynamic) VALUES ('dyn', '*', '2026-05-01', 'UTC', '2026-05-01Z', true, true)"
            )
        finally:
            await seed.close()
        registry = CollectorRegistry()
        settler = PriceSettler(60, registry)
        async with asyncpg.create_pool(cluster.url, min_size=1, max_size=2) as pool:
            settler.attach(lambda: pool.acquire(timeout=5))
            cluster.stop()
            assert await settler.settle_once() == 0
            assert registry.get_sample_value("p1_query_price_sums_failures_total") == 1
            cluster.start()
            days = await eventually(settler.settle_once, 30, "a pass that settles once the database is back")
            assert days == SETTLED_DAYS
            assert registry.get_sample_value("p1_query_price_sums_settled_days_total") == SETTLED_DAYS
    finally:
        cluster.remove()
