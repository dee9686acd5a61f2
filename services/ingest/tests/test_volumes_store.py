"""Gas and water readings on the write path (issue 13 §2) and what ``p1-ingest rebuild`` makes of them
and of the tariff registers' rollup columns (§5): the rebuild writes the same rows again."""

from datetime import timedelta
from typing import Any

from store_kit import NOW, T0, Store, device, make

from p1_ingest.integrity import Limits
from p1_ingest.rebuild import rebuild_device

VOLUME_ROWS = "SELECT meter, ts, value, epoch, flag FROM meter_volumes WHERE device_id = $1 ORDER BY 1, 2"
ROLLUP_ROWS = """
SELECT bucket, epoch, n, import_t1_kwh_min, import_t1_kwh_max, import_t2_kwh_min, import_t2_kwh_max
  FROM rollup_15m WHERE device_id = $1 ORDER BY 1, 2"""
VOLUME_ROLLUPS = "SELECT * FROM rollup_volume_1h WHERE device_id = $1 ORDER BY meter, bucket, epoch"


def _polls(n: int) -> list[dict[str, Any]]:
    """A poll a minute; the gas meter (DSMR 5) reads every 5 minutes, +0.01 m³ each; at minute 20 one
    absurd gas value (a glitch), from minute 40 a new gas meter from 3.0 (a replacement)."""
    out = []
    for k in range(n):
        at = T0 + timedelta(minutes=k)
        gas_at = T0 + timedelta(minutes=k - k % 5)
        gas = 2500 + (k // 5) * 0.01 if k < 40 else 3.0 + (k // 5 - 8) * 0.01
        out.append(
            {
                "ts": at.isoformat(),
                "power_w": 600,
                "import_kwh": 100 + k * 0.01,
                "export_kwh": 0,
                "import_t1_kwh": 60 + k * 0.01,
                "import_t2_kwh": 40.0,
                "gas_m3": 7.0 if k // 5 == 4 else gas,
                "gas_ts": gas_at.isoformat(),
            }
        )
    return out


async def _derived(conn: Any, dev: str) -> list[list[Any]]:
    out = []
    for sql in (VOLUME_ROWS, ROLLUP_ROWS, VOLUME_ROLLUPS):
        out.append([tuple(r) for r in await conn.fetch(sql, dev)])
    return out


async def test_gas_epochs_glitches_and_a_rebuild_that_makes_the_same(store: Store) -> None:
    dev = device()
    polls = _polls(90)
    async with store.pool.acquire() as conn:
        for k in range(0, len(polls), 6):
            await store.write(conn, make(dev, polls[k : k + 6]), NOW)
        before = await _derived(conn, dev)
        volumes = before[0]
        # One row per gas reading (every 5 minutes: 18), the minute-20 value a glitch, the new meter from
        # minute 40 an epoch of its own (the electricity stayed in one).
        assert len(volumes) == 18
        assert [(v[2], v[4]) for v in volumes if v[4] is not None] == [(7.0, "glitch")]
        assert {v[3] for v in volumes if v[1] < T0 + timedelta(minutes=40)} == {0}
        assert {v[3] for v in volumes if v[1] >= T0 + timedelta(minutes=40)} == {1}
        assert await conn.fetchval("SELECT max(epoch) FROM samples WHERE device_id = $1", dev) == 0
        # By hand, the old meter 2500.00 → 2500.07 and the new 3.00 → 3.09 (+0.01 a reading): 0.16 m³.
        rise = await conn.fetchval(
            "SELECT sum(hi - lo) FROM (SELECT epoch, max(value_max) AS hi, min(value_min) AS lo"
            " FROM rollup_volume_1d WHERE device_id = $1 GROUP BY epoch) e",
            dev,
        )
        assert round(rise, 6) == 0.16
        # The registers' rollup columns: register 1 grew 0.89 kWh over the 90 minutes, register 2 not.
        t1 = await conn.fetchrow(
            "SELECT max(import_t1_kwh_max) - min(import_t1_kwh_min) AS t1,"
            " max(import_t2_kwh_max) - min(import_t2_kwh_min) AS t2 FROM rollup_1d WHERE device_id = $1",
            dev,
        )
        assert (round(t1["t1"], 6), t1["t2"]) == (0.89, 0.0)

        report = await rebuild_device(conn, dev, Limits(), NOW)
        assert (report.outcome, report.readings) == ("rebuilt", 90)
        assert await _derived(conn, dev) == before
