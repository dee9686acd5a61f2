"""Day and night (issue 13 §5): a point's tariff-register energies, from the registers' own counters with
the totals' interpolation and epochs, over HTTP (real ingest, real query; Europe/Brussels, CET on
2026-03-10). A 600 W household read every minute from 21:00 to 23:00 local (20:00Z–22:00Z): 0.01 kWh a
minute. Register 1 (day) counts up to the 22:07 reading, register 2 (night) from the 22:08 one on — the
switch falls inside the 22:00–22:15 quarter and the 22:00–23:00 hour."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from query_scenes import upload, utc

from p1_servicekit.testing import ServiceProcess

ALL = {"Authorization": "Bearer tok-all"}
DEV = "q-tariffs"
SWITCH = 67  # the last minute (22:07 local) on register 1
FIELDS = ("import_kwh", "import_t1_kwh", "import_t2_kwh", "export_t1_kwh", "export_t2_kwh")


def _reading(k: int) -> dict[str, object]:
    # Total 1000 + 0.01 k = register 1 (600 + 0.01 min(k, 67)) + register 2 (400 + 0.01 max(0, k − 67)).
    return {
        "ts": (utc(2026, 3, 10, 20, 0) + timedelta(minutes=k)).isoformat(),
        "power_w": 600,
        "import_kwh": round(1000 + 0.01 * k, 2),
        "export_kwh": 20.0,
        "import_t1_kwh": round(600 + 0.01 * min(k, SWITCH), 2),
        "import_t2_kwh": round(400 + 0.01 * max(0, k - SWITCH), 2),
        "export_t1_kwh": 12.0,
        "export_t2_kwh": 8.0,
        "tariff": 1 if k <= SWITCH else 2,
    }


@pytest.fixture(scope="module")
async def tariffs(loaded: str, ingest_client: httpx.AsyncClient) -> str:
    readings = [_reading(k) for k in range(121)]
    for k in range(0, len(readings), 10):
        await upload(ingest_client, DEV, readings[k : k + 10])
    plain = [{key: r[key] for key in ("ts", "power_w", "import_kwh", "export_kwh")} for r in readings]
    await upload(ingest_client, "q-no-registers", plain)
    return loaded


def _points(api: ServiceProcess, bucket: str, start: str, end: str, dev: str = DEV) -> list[tuple[Any, ...]]:
    r = httpx.get(
        f"{api.base_url}/v1/devices/{dev}/series",
        params={"start": start, "end": end, "bucket": bucket, "tz": "Europe/Brussels"},
        headers=ALL,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return [tuple(None if p[f] is None else round(p[f], 6) for f in FIELDS) for p in r.json()["points"]]


def test_day_and_night_by_quarter(api: ServiceProcess, tariffs: str) -> None:
    # (total, day, night, export day, export night). 21:45–22:00: all day, 0.15. 22:00–22:15: day
    # 600.67 − 600.60 = 0.07 (22:00 to 22:07), night 400.08 − 400.00 = 0.08 (22:07 to 22:15): 0.15 in all.
    # 22:15–22:30: all night. Export registers stand still: 0.
    got = _points(api, "15m", "2026-03-10T21:45:00+01:00", "2026-03-10T22:30:00+01:00")
    assert got == [(0.15, 0.15, 0.0, 0.0, 0.0), (0.15, 0.07, 0.08, 0.0, 0.0), (0.15, 0.0, 0.15, 0.0, 0.0)]


def test_day_and_night_by_hour_and_day(api: ServiceProcess, tariffs: str) -> None:
    # 21–22: 0.6 day; 22–23: day 0.07 + night 0.53 = 0.6.
    hours = _points(api, "1h", "2026-03-10T21:00:00+01:00", "2026-03-10T23:00:00+01:00")
    assert hours == [(0.6, 0.6, 0.0, 0.0, 0.0), (0.6, 0.07, 0.53, 0.0, 0.0)]
    # The day: 600.67 − 600.00 = 0.67 day, 400.53 − 400.00 = 0.53 night, 1.2 in all.
    days = _points(api, "1d", "2026-03-10T00:00:00+01:00", "2026-03-11T00:00:00+01:00")
    assert days == [(1.2, 0.67, 0.53, 0.0, 0.0)]
    for total, day, night, *_ in hours + days:
        assert round(day + night, 6) == total


def test_a_meter_without_registers_has_null_day_and_night(api: ServiceProcess, tariffs: str) -> None:
    got = _points(api, "1h", "2026-03-10T21:00:00+01:00", "2026-03-10T23:00:00+01:00", dev="q-no-registers")
    assert got == [(0.6, None, None, None, None)] * 2
