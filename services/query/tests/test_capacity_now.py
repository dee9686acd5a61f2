"""``GET /v1/devices/{device_id}/capacity/now`` against the real services: readings uploaded through
ingest, the newest reading from Redis when ingest's key is there, else PostgreSQL. Every figure by hand.

q-now (November 2026, Brussels UTC+1):
- 5 Nov 10:00–10:30Z, a reading a minute at 3400 W: two completed quarters of 3.4 kW (a whole UTC day of
  the month: read from capacity_days).
- 12 Nov from 15:59:55Z, a reading every 10 s (never on a quarter's boundary): 3000 W up to the reading
  of 16:14:55 (the 16:00 quarter: 0.75 kWh → 3.0 kW), 1000 W up to 16:29:55, 3600 W from 16:30:05.
  Newest reading 16:40:05Z. The counter at 16:30:00 is interpolated half way between 16:29:55 and
  16:30:05 (1000 W in between), so the running quarter's import is 1000 W × 5 s + 3600 W × 600 s =
  2,165,000 J = 0.6013889 kWh (×4 = 2.406 kW); 295 s remain: projected (0.6013889 + 3.6 × 295 / 3600)
  × 4 = 3.5855556 kW. The month's peak 3.4 kW (ours: the meter reported nothing): headroom −0.186 kW;
  extra (3.586 − 3.4) × 50 / 12 = 0.775 → 0.78 €.
q-now-early: 1 December in Brussels begins at 30 Nov 23:00Z. A 5 kW quarter at 30 Nov 12:00Z is
  November's and does not count; 23:00–23:30Z at 2800 W (two quarters of 2.8 kW, the partial first UTC
  day of December), then 1200 W; newest 23:40:00Z: 0.2 kWh so far, projected (0.2 + 1.2 × 300 / 3600)
  × 4 = 1.2 kW against 2.8 kW.
"""

import json
from typing import Any

import httpx
import pytest
from query_scenes import PRICE, Meter, const, seed_token, steps, utc
from redis.asyncio import Redis

from p1_schema.redis import latest_key
from p1_servicekit.testing import ServiceProcess

assert PRICE == 50.0  # the figures below are computed with it


def now_meter() -> Meter:
    m = Meter("q-now")
    m.scene(utc(2026, 11, 5, 10, 0), 31, const(3400))
    t0 = utc(2026, 11, 12, 15, 59, 55)
    m.scene(
        t0, 242, steps((t0, 3000), (utc(2026, 11, 12, 16, 15), 1000), (utc(2026, 11, 12, 16, 30), 3600)), 10
    )
    return m


def early_meter() -> Meter:
    m = Meter("q-now-early")
    m.scene(utc(2026, 11, 30, 12, 0), 16, const(5000))
    t0 = utc(2026, 11, 30, 23, 0)
    m.scene(t0, 41, steps((t0, 2800), (utc(2026, 11, 30, 23, 30), 1200)))
    return m


@pytest.fixture(scope="module")
async def scenes(ingest_client: httpx.AsyncClient) -> dict[str, Meter]:
    meters = {m.device_id: m for m in (now_meter(), early_meter())}
    for meter in meters.values():
        await meter.upload(ingest_client)
    return meters


def _now(api: ServiceProcess, device_id: str, token: str, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{api.base_url}/v1/devices/{device_id}/capacity/now", params=params, headers=headers)


def _body(api: ServiceProcess, device_id: str, **params: str) -> dict[str, Any]:
    r = _now(api, device_id, "tok-all", **params)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


def test_the_running_quarter_from_postgresql(api: ServiceProcess, scenes: dict[str, Meter]) -> None:
    assert _body(api, "q-now") == {
        "device_id": "q-now",
        "tz": "Europe/Brussels",
        "quarter_start": "2026-11-12T17:30:00+01:00",
        "quarter_end": "2026-11-12T17:45:00+01:00",
        "elapsed_s": 605.0,
        "energy_kwh": 0.601389,
        "kw_so_far": 2.406,
        "power_w": 3600.0,
        "projected_kw": 3.586,
        "month_peak_kw": 3.4,
        "threshold_kw": 3.4,
        "headroom_kw": -0.186,
        "extra_cost_eur": 0.78,
        "as_of": "2026-11-12T16:40:05Z",
    }


def test_a_cap_is_the_threshold(api: ServiceProcess, scenes: dict[str, Meter]) -> None:
    """cap_kw 3.0: headroom 3.0 − 3.5855556 = −0.586; the extra cost still counts from the month's peak."""
    body = _body(api, "q-now", cap_kw="3.0")
    assert (body["threshold_kw"], body["headroom_kw"], body["extra_cost_eur"]) == (3.0, -0.586, 0.78)


async def test_the_newest_reading_comes_from_redis(
    api: ServiceProcess, scenes: dict[str, Meter], redis_client: Redis
) -> None:
    """Ingest's key holds a reading 10 s newer than PostgreSQL's (+0.01 kWh, 7200 W now): 0.6113889 kWh so
    far, 285 s left: (0.6113889 + 7.2 × 285 / 3600) × 4 = 4.7255556 kW; headroom 3.4 − 4.7255556 =
    −1.326; extra 1.326 × 50 / 12 = 5.525 → 5.53 €. Without the key: PostgreSQL's again."""
    last = scenes["q-now"].batches[-1][1][-1]
    assert last["ts"] == "2026-11-12T16:40:05+00:00"
    reading = {"ts": "2026-11-12T16:40:15Z", "power_w": 7200.0, "export_kwh": 0.0}
    reading["import_kwh"] = round(float(str(last["import_kwh"])) + 0.01, 9)
    await redis_client.set(latest_key("q-now"), json.dumps({"device_id": "q-now", **reading}))
    try:
        body = _body(api, "q-now")
    finally:
        await redis_client.delete(latest_key("q-now"))
    assert (body["as_of"], body["elapsed_s"], body["energy_kwh"], body["kw_so_far"]) == (
        "2026-11-12T16:40:15Z",
        615.0,
        0.611389,
        2.446,
    )
    assert (body["projected_kw"], body["headroom_kw"], body["extra_cost_eur"]) == (4.726, -1.326, 5.53)
    assert _body(api, "q-now")["as_of"] == "2026-11-12T16:40:05Z"


def test_the_month_starts_at_local_midnight(api: ServiceProcess, scenes: dict[str, Meter]) -> None:
    body = _body(api, "q-now-early")
    assert (body["quarter_start"], body["elapsed_s"], body["energy_kwh"], body["kw_so_far"]) == (
        "2026-12-01T00:30:00+01:00",
        600.0,
        0.2,
        0.8,
    )
    assert (body["projected_kw"], body["month_peak_kw"], body["threshold_kw"], body["headroom_kw"]) == (
        1.2,
        2.8,
        2.8,
        1.6,
    )
    # In UTC the month is November's: 30 Nov 12:00Z's 5 kW quarter is its peak.
    assert _body(api, "q-now-early", tz="UTC")["month_peak_kw"] == 5.0


async def test_the_meters_peak_where_ours_do_not_cover_the_month(
    api: ServiceProcess, scenes: dict[str, Meter], ingest_client: httpx.AsyncClient
) -> None:
    """The meters report 4.2 kW for November and 4.5 kW for December. q-now's quarters begin on 5 Nov, so
    the meter's November peak counts: headroom 4.2 − 3.5855556 = 0.614, no extra cost. q-now-early's
    quarters cover December so far (23:00 and 23:15Z): ours, 2.8 kW, stay."""
    for device_id, month, peak_w, peak_ts in (
        ("q-now", "2026-11", 4200.0, "2026-11-03T19:00:00+01:00"),
        ("q-now-early", "2026-12", 4500.0, "2026-12-01T00:15:00+01:00"),
    ):
        r = await ingest_client.put(
            f"/v1/devices/{device_id}/meter-peaks",
            content=json.dumps({"peaks": [{"month": month, "peak_w": peak_w, "peak_ts": peak_ts}]}),
            headers={"Authorization": f"Bearer {seed_token(device_id)}", "Content-Type": "application/json"},
        )
        assert r.json() == {"stored": 1}
    body = _body(api, "q-now")
    assert (body["month_peak_kw"], body["threshold_kw"], body["headroom_kw"], body["extra_cost_eur"]) == (
        4.2,
        4.2,
        0.614,
        0.0,
    )
    assert _body(api, "q-now-early")["month_peak_kw"] == 2.8


@pytest.mark.parametrize(
    ("device_id", "token", "params", "status"),
    [
        ("q-now", "tok-cap", {}, 404),  # outside the token's scope: as an unknown device
        ("q-nobody", "tok-all", {}, 404),
        ("q-now", "nope", {}, 401),
        ("q-now", "tok-all", {"cap_kw": "0"}, 422),
        ("q-now", "tok-all", {"cap_kw": "nan"}, 422),
        ("q-now", "tok-all", {"cap_kw": "1e9"}, 422),
        ("q-now", "tok-all", {"tz": "Mars/Olympus"}, 422),
    ],
)
def test_refusals(
    api: ServiceProcess,
    scenes: dict[str, Meter],
    device_id: str,
    token: str,
    params: dict[str, str],
    status: int,
) -> None:
    r = _now(api, device_id, token, **params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_an_unknown_device_and_one_out_of_scope_read_alike(
    api: ServiceProcess, scenes: dict[str, Meter]
) -> None:
    hidden = _now(api, "q-now", "tok-cap").json()
    assert hidden == {**_now(api, "q-nobody", "tok-all").json(), "detail": hidden["detail"]}
    assert "q-now" in hidden["detail"]
