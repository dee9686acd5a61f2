"""Gas and water placed by their meters' own time and with epochs of their own (issue 13 §2), over HTTP:
readings uploaded to a real ingest process, series read from a real query process (Europe/Brussels,
2026-03-10 is CET, +01:00). Electricity is a steady 600 W throughout (not what these tests look at)."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from pydantic_core import to_json
from query_scenes import upload, utc

from p1_contracts.models import Series
from p1_query.forms import json_objects, json_values
from p1_servicekit.testing import ServiceProcess

ALL = {"Authorization": "Bearer tok-all"}
BRUSSELS = "Europe/Brussels"


def _reading(ts: datetime, k: int, **extra: object) -> dict[str, object]:
    """Reading ``k`` of a 600 W household polled every 5 minutes (+0.05 kWh a poll)."""
    return {"ts": ts.isoformat(), "power_w": 600, "import_kwh": 1000 + k * 0.05, "export_kwh": 0, **extra}


def _dsmr4() -> list[dict[str, object]]:
    """Polls every 5 minutes from 21:05 to 01:10 local (20:05Z–00:10Z). The DSMR 4 gas meter reports on
    the hour (gas_ts H:00) and the value reaches the P1 port a few minutes later: the polls from H:05
    on carry it. Gas at 21:00 100.0, 22:00 100.2, 23:00 100.4, 00:00 101.1, 01:00 101.2 m³."""
    gas = {20: 100.0, 21: 100.2, 22: 100.4, 23: 101.1, 0: 101.2}  # by UTC hour of gas_ts
    out = []
    for k in range(50):
        ts = utc(2026, 3, 10, 20, 5) + timedelta(minutes=5 * k)
        hour = (ts - timedelta(minutes=5)).replace(minute=0, second=0)
        out.append(_reading(ts, k, gas_m3=gas[hour.hour], gas_ts=hour.isoformat()))
    return out


def _every_5_min(meter: str, values: list[float]) -> list[dict[str, object]]:
    """A meter read every 5 minutes from 09:00Z (10:00 local), its time on the minute, polled 30 s
    later."""
    out = []
    for k, value in enumerate(values):
        at = utc(2026, 3, 10, 9, 0) + timedelta(minutes=5 * k)
        out.append(
            _reading(at + timedelta(seconds=30), k, **{f"{meter}_m3": value, f"{meter}_ts": at.isoformat()})
        )
    return out


@pytest.fixture(scope="module")
async def volumes(loaded: str, ingest_client: httpx.AsyncClient) -> str:
    # Batches as an edge sends them: a few readings each, in order.
    dsmr4 = _dsmr4()
    for k in range(0, len(dsmr4), 7):
        await upload(ingest_client, "q-gas-dsmr4", dsmr4[k : k + 7])
    # Old gas meter 2500.0 at 10:00 + 0.05 m³ a reading to 2500.6 at 11:00; the new one from 11:05:
    # 0.0, +0.05 a reading to 0.55 at 12:00.
    replaced = _every_5_min("gas", [2500 + k * 0.05 for k in range(13)] + [k * 0.05 for k in range(12)])
    for k in range(0, len(replaced), 4):
        await upload(ingest_client, "q-gas-replaced", replaced[k : k + 4])
    # Water 95.0 + 0.05 a reading from 10:00 to 12:00, except 33.0 at 10:30 (95 → 33 → 95).
    water = [95 + k * 0.05 for k in range(25)]
    water[6] = 33.0
    glitchy = _every_5_min("water", water)
    for k in range(0, len(glitchy), 5):
        await upload(ingest_client, "q-water-glitch", glitchy[k : k + 5])
    return loaded


def _series(api: ServiceProcess, device: str, field: str, bucket: str, start: str, end: str) -> list[Any]:
    r = httpx.get(
        f"{api.base_url}/v1/devices/{device}/series",
        params={"start": start, "end": end, "bucket": bucket, "tz": BRUSSELS},
        headers=ALL,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return [None if p[field] is None else round(p[field], 6) for p in r.json()["points"]]


def test_dsmr4_hourly_gas_lands_in_the_hour_it_was_measured(api: ServiceProcess, volumes: str) -> None:
    # By hand, C at each hour is the reading stamped then: [21,22) 100.2 − 100.0 = 0.2;
    # [22,23) 100.4 − 100.2 = 0.2; [23,24) 101.1 − 100.4 = 0.7 (the shower before midnight, though its
    # value arrived at 00:05); [00,01) 101.2 − 101.1 = 0.1; [01,02) not read yet (the 02:00 value): null.
    hours = _series(
        api, "q-gas-dsmr4", "gas_m3", "1h", "2026-03-10T21:00:00+01:00", "2026-03-11T02:00:00+01:00"
    )
    assert hours == [0.2, 0.2, 0.7, 0.1, None]
    # Days: 10 March 101.1 (00:00 on the 11th) − 100.0 (held at the first reading) = 1.1; 11 March
    # 101.2 − 101.1 = 0.1. (By poll time, as before, the 10th got 0.75: C at midnight halfway between
    # the 23:55 poll's 100.4 and the 00:05 poll's 101.1.)
    days = _series(
        api, "q-gas-dsmr4", "gas_m3", "1d", "2026-03-10T00:00:00+01:00", "2026-03-12T00:00:00+01:00"
    )
    assert days == [1.1, 0.1]
    # Quarters of 23:00–24:00: the hour's 0.7 interpolated evenly, 0.175 each.
    quarters = _series(
        api, "q-gas-dsmr4", "gas_m3", "15m", "2026-03-10T23:00:00+01:00", "2026-03-11T00:00:00+01:00"
    )
    assert quarters == [0.175] * 4


def test_a_gas_meter_replacement_adds_no_spike(api: ServiceProcess, volumes: str) -> None:
    # Old meter 10:00–11:00: 2500.6 − 2500.0 = 0.6; new meter 11:05–12:00: 0.55 − 0.0 = 0.55; what flowed
    # between 11:00 and 11:05 is unknown and counted nowhere. Not 2500.6 − 0 = a 2,501 m³ day.
    dev = "q-gas-replaced"
    hours = _series(api, dev, "gas_m3", "1h", "2026-03-10T10:00:00+01:00", "2026-03-10T13:00:00+01:00")
    assert hours == [0.6, 0.55, None]
    assert _series(api, dev, "gas_m3", "1d", "2026-03-10T00:00:00+01:00", "2026-03-11T00:00:00+01:00") == [
        1.15
    ]
    # The electricity counters went on as one epoch: 24 polls × 0.05 kWh from 10:00:30 to 12:00:30,
    # 1.2 kWh in the day.
    assert _series(
        api, dev, "import_kwh", "1d", "2026-03-10T00:00:00+01:00", "2026-03-11T00:00:00+01:00"
    ) == [1.2]


def test_a_water_glitch_adds_nothing(api: ServiceProcess, volumes: str, database_url: str) -> None:
    # 24 steps of 0.05 from 10:00 to 12:00: 0.6 an hour, 1.2 in the day; 33.0 at 10:30 counts nowhere.
    dev = "q-water-glitch"
    hours = _series(api, dev, "water_m3", "1h", "2026-03-10T10:00:00+01:00", "2026-03-10T12:00:00+01:00")
    assert hours == [0.6, 0.6]
    assert _series(api, dev, "water_m3", "1d", "2026-03-10T00:00:00+01:00", "2026-03-11T00:00:00+01:00") == [
        1.2
    ]
    assert _series(api, dev, "gas_m3", "1d", "2026-03-10T00:00:00+01:00", "2026-03-11T00:00:00+01:00") == [
        None
    ]


async def test_the_glitch_is_kept_and_marked(volumes: str) -> None:
    conn = await asyncpg.connect(volumes)
    try:
        rows = await conn.fetch(
            "SELECT meter, value, flag FROM meter_volumes"
            " WHERE device_id = 'q-water-glitch' AND flag IS NOT NULL"
        )
        epochs = await conn.fetch(
            "SELECT DISTINCT epoch FROM meter_volumes WHERE device_id = 'q-gas-replaced' ORDER BY 1"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("water", 33.0, "glitch")]
    assert [r["epoch"] for r in epochs] == [0, 1]


def test_series_are_written_as_the_contract_model_writes_them(api: ServiceProcess, volumes: str) -> None:
    """Series points are written column by column (``forms.json_objects``), not through the models:
    the bytes must be the model's own JSON of the same answer (numbers, nulls, local times, order)."""
    for bucket, start, end in (
        ("15m", "2026-03-10T23:00:00+01:00", "2026-03-11T01:00:00+01:00"),
        ("1d", "2026-03-09T00:00:00+01:00", "2026-03-12T00:00:00+01:00"),
    ):
        r = httpx.get(
            f"{api.base_url}/v1/devices/q-gas-dsmr4/series",
            params={"start": start, "end": end, "bucket": bucket, "tz": BRUSSELS},
            headers=ALL,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert Series.model_validate_json(r.content).model_dump_json().encode() == r.content


def test_json_objects_equal_the_serializer_on_dicts() -> None:
    names = ("start", "n", "x", "y")
    assert json_objects(names, [[None] * 2] * 4) == to_json([dict.fromkeys(names)] * 2)
    when = [
        datetime(2026, 3, 29, 1, 45, tzinfo=UTC).astimezone(ZoneInfo(BRUSSELS)) + timedelta(hours=k)
        for k in range(3)
    ]
    for columns in (
        [when, [0, 2, 3], [1e-06, None, 0.1 + 0.2], [None, None, None]],
        [[None] * 3, [0, 2, 3], [None] * 3, when],
        [when, [None] * 3, [None] * 3, [7.0, -0.0, 1e16]],
    ):
        rows = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
        assert json_objects(names, columns) == to_json(rows)
        assert (
            json_objects(names, [json_values(c) for c in columns], b"{", b"}") == b"{" + to_json(rows) + b"}"
        )
