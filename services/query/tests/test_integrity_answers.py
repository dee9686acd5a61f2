"""What a glitch, a single 0 reading, a late spike and a real counter reset do to the answers: series at
15m/1h/1d, the capacity ledger and the exports — over HTTP against a real query process, with the
readings uploaded to a real ingest process (ingest's rules flag them). Each device runs at a steady
600 W with a reading a minute from 2026-03-10 09:00Z (10:00 in Brussels) for two hours: 0.15 kWh a
quarter, 0.6 an hour, 1.2 in the day, a demand of 0.6 kW in every quarter."""

import json
from typing import Any

import httpx
import pytest
from query_scenes import Meter, const, upload, utc

from p1_servicekit.testing import ServiceProcess

ALL = {"Authorization": "Bearer tok-all"}
START = utc(2026, 3, 10, 9, 0)
DEVICES = ("q-int-glitch", "q-int-zero", "q-int-late")


def _steady(device_id: str, import_kwh: float) -> Meter:
    m = Meter(device_id, import_kwh=import_kwh)
    m.scene(START, 121, const(600))
    return m


def _set(m: Meter, minute: int, import_kwh: float) -> None:
    m.batches[-1][1][minute]["import_kwh"] = import_kwh


@pytest.fixture(scope="module")
async def integrity_devices(loaded: str, ingest_client: httpx.AsyncClient) -> str:
    glitch = _steady("q-int-glitch", 95.0)
    _set(glitch, 40, 33.0)  # 95 → 33 → 95
    zero = _steady("q-int-zero", 13779.0)
    _set(zero, 70, 0.0)
    late = _steady("q-int-late", 500.0)
    reset = Meter("q-int-reset", import_kwh=13779.0)  # 30 minutes, then a counter from 2 kWh for 10
    reset.scene(START, 31, const(600))
    reset.import_kwh = 2.0
    reset.scene(utc(2026, 3, 10, 9, 31), 11, const(600))
    for m in (glitch, zero, late, reset):
        await m.upload(ingest_client)
    spike = {"ts": "2026-03-10T09:30:30+00:00", "power_w": 600, "import_kwh": 1e6, "export_kwh": 0}
    assert await upload(ingest_client, "q-int-late", [spike]) == {"accepted": 1, "duplicates": 0}
    return loaded


def _get(api: ServiceProcess, path: str, **params: str) -> httpx.Response:
    r = httpx.get(api.base_url + path, params=params, headers=ALL, timeout=30)
    assert r.status_code == 200, r.text
    return r


def _imports(api: ServiceProcess, device: str, bucket: str, start: str, end: str) -> list[float | None]:
    body: dict[str, Any] = _get(
        api, f"/v1/devices/{device}/series", start=start, end=end, bucket=bucket, tz="Europe/Brussels"
    ).json()
    return [None if p["import_kwh"] is None else round(p["import_kwh"], 6) for p in body["points"]]


@pytest.mark.parametrize("dev", DEVICES)
def test_series_count_nothing_of_a_glitch(api: ServiceProcess, integrity_devices: str, dev: str) -> None:
    assert _imports(api, dev, "15m", "2026-03-10T09:00:00Z", "2026-03-10T11:00:00Z") == [0.15] * 8
    assert _imports(api, dev, "1h", "2026-03-10T09:00:00Z", "2026-03-10T11:00:00Z") == [0.6, 0.6]
    assert _imports(api, dev, "1d", "2026-03-10T00:00:00+01:00", "2026-03-11T00:00:00+01:00") == [1.2]


@pytest.mark.parametrize("dev", DEVICES)
def test_capacity_counts_nothing_of_a_glitch(api: ServiceProcess, integrity_devices: str, dev: str) -> None:
    body = _get(api, f"/v1/devices/{dev}/capacity", month="2026-03").json()
    assert body["peak_kw"] == 0.6  # the old rule booked +62 kWh (248 kW) or +13,779 kWh here
    assert body["months"] == [{"month": "2026-03", "peak_kw": 0.6, "counted_kw": 2.5, "source": "measured"}]


@pytest.mark.parametrize("dev", DEVICES)
def test_bucket_export_counts_nothing_of_a_glitch(
    api: ServiceProcess, integrity_devices: str, dev: str
) -> None:
    r = _get(
        api,
        f"/v1/devices/{dev}/export",
        start="2026-03-10T09:00:00Z",
        end="2026-03-10T11:00:00Z",
        bucket="15m",
        format="ndjson",
    )
    assert [round(json.loads(line)["import_kwh"], 6) for line in r.text.splitlines()] == [0.15] * 8


def test_raw_export_keeps_the_glitch_with_its_flag(api: ServiceProcess, integrity_devices: str) -> None:
    raw = _get(
        api,
        "/v1/devices/q-int-glitch/export",
        start="2026-03-10T09:39:00Z",
        end="2026-03-10T09:42:00Z",
        format="ndjson",
    )
    rows = [json.loads(line) for line in raw.text.splitlines()]
    assert [(r["import_kwh"], r["flag"]) for r in rows] == [(95.39, None), (33.0, "glitch"), (95.41, None)]
    csv = _get(api, "/v1/devices/q-int-late/export", start="2026-03-10T09:30:00Z", end="2026-03-10T09:31:00Z")
    lines = csv.text.splitlines()
    assert lines[0].endswith(",gas_unique_id,water_unique_id,flag")  # the contract's fields, then the flag
    assert lines[2].startswith("2026-03-10T09:30:30Z,600.0,1000000.0,")
    assert lines[2].endswith(",glitch")
    # The raw 1m series skips it: the minute holds the good reading only.
    minute = _get(
        api,
        "/v1/devices/q-int-late/series",
        start="2026-03-10T09:30:00Z",
        end="2026-03-10T09:31:00Z",
        bucket="1m",
    ).json()["points"][0]
    assert (minute["samples"], round(minute["import_kwh"], 6)) == (1, 0.01)


def test_a_real_counter_reset_books_both_sides(api: ServiceProcess, integrity_devices: str) -> None:
    """13,779.00 → 13,779.30 kWh by 09:30, then 2.00 → 2.10 from 09:31 to 09:41: 0.30 + 0.10 kWh in the
    hour (the minute between the meters is unknown and counted nowhere), 0.10 in the quarter of the
    reset, nothing in the last quarter (no readings)."""
    dev = "q-int-reset"
    assert _imports(api, dev, "1h", "2026-03-10T09:00:00Z", "2026-03-10T10:00:00Z") == [0.4]
    assert _imports(api, dev, "15m", "2026-03-10T09:00:00Z", "2026-03-10T10:00:00Z") == [
        0.15,
        0.15,
        0.1,
        None,
    ]
    raw = _get(
        api,
        f"/v1/devices/{dev}/export",
        start="2026-03-10T09:00:00Z",
        end="2026-03-10T10:00:00Z",
        format="ndjson",
    )
    assert all(json.loads(line)["flag"] is None for line in raw.text.splitlines())
