"""The query API over HTTP against a real uvicorn process, PostgreSQL and Redis, with answers computed by
hand from the scenes in ``query_scenes`` (uploaded to a real ingest process)."""

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from capacity_reference import fetch_quarters, quarter_demands
from query_scenes import HASHED_TOKEN, PRICE, query_env, upload
from redis.asyncio import Redis

from p1_query.app import create_app
from p1_query.settings import QuerySettings
from p1_schema.redis import latest_key
from p1_servicekit.spec import load_spec, route_mismatches
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

ALL = {"Authorization": "Bearer tok-all"}


def get(
    api: ServiceProcess, path: str, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    # httpx replaces a query string in the path by ``params``, even an empty one: pass one or the other.
    return httpx.get(
        api.base_url + path, params=params or None, headers=ALL if headers is None else headers, timeout=30
    )


def getp(
    api: ServiceProcess, path: str, params: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.get(
        api.base_url + path, params=params, headers=ALL if headers is None else headers, timeout=30
    )


def series(api: ServiceProcess, device: str, **params: str) -> dict[str, Any]:
    r = getp(api, f"/v1/devices/{device}/series", params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_routes_match_the_spec_for_tag_query() -> None:
    app = create_app(QuerySettings(read_tokens="t:*"))
    assert route_mismatches(app, load_spec(), "query") == []


# ---- auth and scope -------------------------------------------------------------------------------


def test_no_or_unknown_token_is_401(api: ServiceProcess) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dG9rLWFsbA=="}):
        r = get(api, "/v1/devices", headers=headers)
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"] == "Bearer"


def test_a_device_outside_the_scope_is_404_exactly_as_an_unknown_one(api: ServiceProcess) -> None:
    cap_only = {"Authorization": "Bearer tok-cap"}
    hidden = get(api, "/v1/devices/q-dst/realtime", headers=cap_only)
    unknown = get(api, "/v1/devices/q-none/realtime", headers=ALL)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == {**unknown.json(), "detail": "No device 'q-dst'."}
    assert unknown.json()["detail"] == "No device 'q-none'."
    for path in (
        "series?start=2026-01-01T00:00:00Z&end=2026-01-02T00:00:00Z&bucket=1h",
        "capacity?month=2026-02",
    ):
        assert get(api, f"/v1/devices/q-dst/{path}", headers=cap_only).status_code == 404
        assert get(api, f"/v1/devices/q-none/{path}").status_code == 404
    assert get(api, "/v1/devices/q-cap/capacity", headers=cap_only, month="2026-02").status_code == 200


def test_malformed_device_id_is_422_naming_the_path_parameter(api: ServiceProcess) -> None:
    for path in ("/v1/devices/-bad/realtime", "/v1/devices/-bad/capacity?month=2026-02"):
        r = get(api, path)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == ["path", "device_id"]


def test_realtime_as_a_plain_route_keeps_problem_answers_and_route_metrics(api: ServiceProcess) -> None:
    """Realtime bypasses FastAPI's parameter machinery (servicekit.routing.PlainRoute): its errors are
    still problem+json from the app's handlers, and its metrics still carry the route template."""
    path = "/v1/devices/q-none/realtime"
    assert get(api, path, headers={}).headers["content-type"] == "application/problem+json"
    r = get(api, path)
    assert (r.status_code, r.headers["content-type"]) == (404, "application/problem+json")
    assert httpx.head(api.base_url + path, headers=ALL).status_code == 404
    assert httpx.post(api.base_url + path, headers=ALL).status_code == 405
    metrics = httpx.get(api.base_url + "/metrics").text
    for status in ("401", "404"):
        assert (
            f'p1_http_requests_total{{method="GET",route="/v1/devices/{{device_id}}/realtime",'
            f'service="query",status="{status}"}}'
        ) in metrics
    assert "q-none" not in metrics


def test_device_list_shows_only_the_scope(api: ServiceProcess) -> None:
    hashed = get(api, "/v1/devices", headers={"Authorization": f"Bearer {HASHED_TOKEN}"}).json()
    assert [d["device_id"] for d in hashed] == ["q-dst", "q-swap"]
    swap = hashed[1]
    assert swap["meter"] == {"serial": "M2", "model": "TEST", "protocol_version": 50}
    assert swap["first_seen"] == "2026-05-04T21:00:00Z"
    assert swap["last_seen"] == "2026-05-06T00:00:00Z"
    everything = [d["device_id"] for d in get(api, "/v1/devices").json()]
    assert {"q-cap", "q-dst", "q-swap", "q-sparse"} <= set(everything)
    assert everything == sorted(everything)


# ---- series ----------------------------------------------------------------------------------------


def test_spring_dst_day_has_23_hours(api: ServiceProcess) -> None:
    day = series(
        api, "q-dst", start="2026-03-29T00:00:00+01:00", end="2026-03-29T12:00:00+02:00", bucket="1d"
    )
    (point,) = day["points"]
    assert (point["start"], point["end"]) == ("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00")
    assert point["samples"] == 23 * 60
    assert point["import_kwh"] == pytest.approx(13.8)  # 23 h × 0.6 kW
    assert point["power_avg_w"] == 600
    hours = series(
        api, "q-dst", start="2026-03-29T00:00:00+01:00", end="2026-03-30T00:00:00+02:00", bucket="1h"
    )
    assert len(hours["points"]) == 23
    assert [p["start"][11:] for p in hours["points"][1:3]] == ["01:00:00+01:00", "03:00:00+02:00"]
    assert all(p["import_kwh"] == pytest.approx(0.6) for p in hours["points"])


def test_autumn_dst_day_has_25_hours(api: ServiceProcess) -> None:
    day = series(
        api, "q-dst", start="2026-10-25T00:00:00+02:00", end="2026-10-26T00:00:00+01:00", bucket="1d"
    )
    (point,) = day["points"]
    assert point["samples"] == 25 * 60
    assert point["import_kwh"] == pytest.approx(15.0)  # 25 h × 0.6 kW
    hours = series(
        api, "q-dst", start="2026-10-25T00:00:00+02:00", end="2026-10-26T00:00:00+01:00", bucket="1h"
    )
    starts = [p["start"][11:] for p in hours["points"]]
    assert len(starts) == 25
    assert starts[2:4] == ["02:00:00+02:00", "02:00:00+01:00"]


def test_half_hour_zone_gets_local_hours_from_quarter_rollups(api: ServiceProcess) -> None:
    # Asia/Kolkata is UTC+05:30: its hours start on the UTC half hour, so rollup_1h cannot serve them.
    hours = series(
        api,
        "q-dst",
        start="2026-03-29T06:00:00+05:30",
        end="2026-03-29T09:00:00+05:30",
        bucket="1h",
        tz="Asia/Kolkata",
    )
    assert [p["start"] for p in hours["points"]] == [
        "2026-03-29T06:00:00+05:30",
        "2026-03-29T07:00:00+05:30",
        "2026-03-29T08:00:00+05:30",
    ]
    assert [(p["samples"], p["import_kwh"]) for p in hours["points"]] == [(60, pytest.approx(0.6))] * 3


def test_meter_replacement_mid_day(api: ServiceProcess) -> None:
    # Old meter 22:00Z → 10:00Z: 12 h × 1.2 kW = 14.4 kWh; new meter 10:10Z → 22:00Z: 710 min × 0.02 = 14.2.
    (day,) = series(
        api, "q-swap", start="2026-05-05T00:00:00+02:00", end="2026-05-06T00:00:00+02:00", bucket="1d"
    )["points"]
    assert day["import_kwh"] == pytest.approx(28.6)
    assert day["samples"] == 721 + 710
    hours = series(
        api, "q-swap", start="2026-05-05T11:00:00+02:00", end="2026-05-05T14:00:00+02:00", bucket="1h"
    )
    got = [(p["samples"], p["import_kwh"]) for p in hours["points"]]
    # 11-12 local: 1.2 kWh; 12-13: only the new meter's 50 minutes count (1.0 kWh), never −5000 or +5000;
    # its samples are the old meter's 12:00 reading and the new one's 50.
    assert got == [(60, pytest.approx(1.2)), (51, pytest.approx(1.0)), (60, pytest.approx(1.2))]


def test_readings_every_10_s_are_interpolated_at_bucket_edges(api: ServiceProcess) -> None:
    minutes = series(
        api, "q-sparse", start="2026-06-01T09:59:00Z", end="2026-06-01T10:02:00Z", bucket="1m", tz="UTC"
    )
    got = [(p["samples"], p["import_kwh"]) for p in minutes["points"]]
    # [09:59, 10:00): 3.6 kW throughout → 0.06 kWh. [10:00, 10:01): C(10:00) lies half-way between the
    # readings at 09:59:55 and 10:00:05 (+0.005 of that 0.01 kWh interval), C(10:01) half-way between
    # 10:00:55 and 10:01:05 (+0.01 of 0.02): 0.12 − 0.005 = 0.115 kWh, where first-to-last in the minute
    # would say 0.10.
    assert got == [(6, pytest.approx(0.06)), (6, pytest.approx(0.115)), (6, pytest.approx(0.12))]


def test_a_gap_of_several_hours(api: ServiceProcess) -> None:
    hours = series(
        api, "q-sparse", start="2026-06-01T10:00:00Z", end="2026-06-01T15:00:00Z", bucket="1h", tz="UTC"
    )
    pts = hours["points"]
    assert [p["samples"] for p in pts] == [181, 0, 0, 0, 180]
    for empty in pts[1:4]:
        assert all(
            empty[k] is None for k in ("power_avg_w", "power_min_w", "power_max_w", "import_kwh", "gas_m3")
        )
    # 10-11: 3.605 kWh up to the 10:30:05 reading, plus the gap's 2.4 kWh × 1795 s / 14400 s = 0.299167.
    assert pts[0]["import_kwh"] == pytest.approx(3.605 + 2.4 * 1795 / 14400, abs=1e-6)
    # 14-15: the gap's 2.4 × 1805 / 14400 = 0.300833, plus 179 × 0.02 + 0.01 = 3.59 after 14:30:05.
    assert pts[4]["import_kwh"] == pytest.approx(2.4 * 1805 / 14400 + 3.59, abs=1e-6)
    assert (pts[0]["power_min_w"], pts[0]["power_max_w"]) == (7200, 7200)


def test_series_of_an_idle_range_has_every_bucket_empty(api: ServiceProcess) -> None:
    body = series(
        api, "q-cap", start="2024-01-01T00:00:00+01:00", end="2024-01-01T03:00:00+01:00", bucket="1h"
    )
    assert [p["samples"] for p in body["points"]] == [0, 0, 0]
    assert body["start"] == "2024-01-01T00:00:00+01:00"


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        (
            {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z", "bucket": "1h"},
            "end",
            "after start",
        ),
        (
            {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "bucket": "5m"},
            "bucket",
            "one of",
        ),
        (
            {
                "start": "2026-01-01T00:00:00Z",
                "end": "2026-01-02T00:00:00Z",
                "bucket": "1h",
                "tz": "Mars/Base",
            },
            "tz",
            "IANA",
        ),
        (
            {"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z", "bucket": "1m"},
            "bucket",
            "coarser",
        ),
        ({"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00Z", "bucket": "1h"}, "start", "offset"),
        # Found by schemathesis: year 1 made the local day boundaries overflow (a 500).
        (
            {"start": "0001-01-01T00:00:00Z", "end": "0001-01-01T06:00:00+00:00", "bucket": "1d"},
            "start",
            "between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z",
        ),
        (
            {"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:00:00-05:00", "bucket": "1d"},
            "end",
            "between",
        ),
    ],
)
def test_bad_series_requests_are_422_saying_what_to_change(
    api: ServiceProcess, params: dict[str, str], field: str, says: str
) -> None:
    r = getp(api, "/v1/devices/q-dst/series", params)
    assert r.status_code == 422
    body = r.json()
    assert body["errors"][0]["loc"] == ["query", field]
    assert says in body["detail"]


# ---- capacity --------------------------------------------------------------------------------------


def test_capacity_ledger_by_hand(api: ServiceProcess) -> None:
    r = get(api, "/v1/devices/q-cap/capacity", month="2026-02")
    assert r.status_code == 200
    body = r.json()
    assert body["peak_kw"] == 4.0  # not the 8 kW solar-export quarter
    assert body["peak_start"] == "2026-02-10T18:00:00+01:00"
    assert body["top_quarters"][:2] == [
        {"start": "2026-02-10T18:00:00+01:00", "kw": 4.0},
        {"start": "2026-02-12T11:00:00+01:00", "kw": 3.5},  # the meter's own quarter average
    ]
    # 2.0 (10:45 local on the 12th) and 2.0 (11:15); the 2 kW of 11:30, the device's newest quarter, is
    # running: no reading of a later quarter completes it, so the fifth is 1.0 (the 10th, 18:15).
    assert [q["kw"] for q in body["top_quarters"]] == [4.0, 3.5, 2.0, 2.0, 1.0]
    assert (body["meter_peak_kw"], body["meter_peak_differs"]) == (4.1, True)  # 2.4 % apart
    assert body["months"] == [
        {"month": "2025-06", "peak_kw": 1.2, "counted_kw": 2.5, "source": "measured"},
        {"month": "2025-09", "peak_kw": 5.0, "counted_kw": 5.0, "source": "measured"},
        {"month": "2026-02", "peak_kw": 4.0, "counted_kw": 4.0, "source": "measured"},
    ]  # 2025-01 (9 kW) is 13 months back; months without data do not count
    assert body["rolling_12m_avg_kw"] == 3.833  # (2.5 + 5.0 + 4.0) / 3
    assert body["billable_kw"] == 3.833
    assert body["price_eur_per_kw_year"] == PRICE
    assert body["cost_eur_per_year"] == 191.65


def test_capacity_without_data_bills_the_floor(api: ServiceProcess) -> None:
    body = get(api, "/v1/devices/q-cap/capacity", month="2023-05").json()
    assert body["peak_kw"] is None
    assert body["months"] == []
    assert body["top_quarters"] == []
    assert (body["rolling_12m_avg_kw"], body["billable_kw"], body["cost_eur_per_year"]) == (None, 2.5, 125.0)
    assert get(api, "/v1/devices/q-cap/capacity", month="2026-13").status_code == 422


# ---- realtime -------------------------------------------------------------------------------------


async def test_realtime_from_redis_then_postgres(api: ServiceProcess, redis_client: Redis) -> None:
    ts = datetime.now(UTC).replace(microsecond=0)
    latest = {
        "device_id": "q-swap",
        "ts": ts.isoformat(),
        "power_w": 321.0,
        "import_kwh": 1.5,
        "export_kwh": 0.0,
    }
    await redis_client.set(latest_key("q-swap"), json.dumps(latest))
    try:
        body = get(api, "/v1/devices/q-swap/realtime").json()
        assert body["power_w"] == 321.0
        assert 0 <= body["age_s"] < 30
    finally:
        await redis_client.delete(latest_key("q-swap"))
    # Without the key: the newest stored reading, its age computed at answer time.
    body = get(api, "/v1/devices/q-swap/realtime").json()
    assert body["ts"] == "2026-05-06T00:00:00Z"
    assert body["device_id"] == "q-swap"
    expected_age = datetime.now(UTC).timestamp() - datetime(2026, 5, 6, tzinfo=UTC).timestamp()
    assert body["age_s"] == pytest.approx(expected_age, abs=30)


async def test_realtime_memo_serves_one_read_to_many_and_ages_at_answer_time(redis_client: Redis) -> None:
    from prometheus_client import CollectorRegistry

    from p1_query.db import DbTimer
    from p1_query.realtime import LatestReadings
    from p1_servicekit.redis_guard import RedisGuard

    registry = CollectorRegistry()
    guard = RedisGuard(redis_client, registry, "test", 1.0)

    def no_database() -> Any:
        raise AssertionError("the memo or Redis must answer")

    readings = LatestReadings(guard, no_database, DbTimer(registry), memo_s=60.0)
    key = latest_key("q-memo")
    await redis_client.set(
        key,
        json.dumps({"ts": "2026-01-01T00:00:00+00:00", "power_w": 1.0, "import_kwh": 2.0, "export_kwh": 0.0}),
    )
    try:
        first = await readings.get("q-memo")
        await redis_client.set(
            key,
            json.dumps(
                {"ts": "2026-01-01T00:00:01+00:00", "power_w": 9.0, "import_kwh": 2.0, "export_kwh": 0.0}
            ),
        )
        second = await readings.get("q-memo")
    finally:
        await redis_client.delete(key)
    assert first is second is not None
    at = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC).timestamp()
    assert json.loads(first.answer(at)) == {
        "ts": "2026-01-01T00:00:00Z",
        "power_w": 1.0,
        "import_kwh": 2.0,
        "export_kwh": 0.0,
        "device_id": "q-memo",
        "age_s": 10.0,
    }


# ---- caching ----------------------------------------------------------------------------------------


def _metrics(api: ServiceProcess) -> str:
    return httpx.get(api.base_url + "/metrics").text


def _cache_count(api: ServiceProcess, result: str) -> float:
    text = _metrics(api)
    m = re.search(rf'^p1_query_cache_total{{result="{result}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


async def test_cache_etag_304_and_generation(api: ServiceProcess, redis_client: Redis) -> None:
    params = {"start": "2026-03-29T00:00:00+01:00", "end": "2026-03-30T00:00:00+02:00", "bucket": "15m"}
    path = "/v1/devices/q-dst/series"
    hits, misses = _cache_count(api, "hit"), _cache_count(api, "miss")
    first = getp(api, path, params)
    second = getp(api, path, params)
    assert (_cache_count(api, "hit") - hits, _cache_count(api, "miss") - misses) == (1, 1)
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    assert first.headers["cache-control"] == "private, max-age=300"  # before the newest reading
    not_modified = getp(api, path, params, {**ALL, "If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert 'p1_query_db_seconds_count{operation="version"}' in _metrics(api)
    # The ETag is of the content, so an answer computed again still revalidates to 304.
    await redis_client.flushdb()
    again = getp(api, path, params, {**ALL, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


async def _write(ingest: httpx.AsyncClient, device: str, seconds: list[int]) -> None:
    """Readings of 3600 W (1 Wh a second) at 2026-11-02 00:00 UTC + each second, through ingest."""
    t0 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
    samples = [
        {
            "ts": datetime.fromtimestamp(t0 + k, UTC).isoformat(),
            "power_w": 3600.0,
            "import_kwh": 100 + k / 1000,
            "export_kwh": 0.0,
        }
        for k in seconds
    ]
    await upload(ingest, device, samples)


async def test_answers_before_the_newest_reading_survive_uploads_until_late_data(
    api: ServiceProcess, ingest_client: httpx.AsyncClient
) -> None:
    """An answer about readings older than the newest is final: new uploads keep hitting the cache;
    a late reading inside the range makes it computed again. An answer about a range that reaches past
    the newest reading is computed again after every upload."""
    dev = "q-cache"
    await _write(ingest_client, dev, list(range(0, 3600, 10)))  # 00:00–01:00 UTC, one reading every 10 s
    past = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-02T00:30:00Z", "bucket": "15m"}
    live = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-02T02:00:00Z", "bucket": "1h"}
    path = f"/v1/devices/{dev}/series"

    def fetch(params: dict[str, str]) -> tuple[httpx.Response, float]:
        misses = _cache_count(api, "miss")
        r = getp(api, path, params)
        assert r.status_code == 200, r.text
        return r, _cache_count(api, "miss") - misses

    (p1, m1), (l1, n1) = fetch(past), fetch(live)
    assert (m1, n1) == (1, 1)
    assert p1.headers["cache-control"] == "private, max-age=300"
    assert l1.headers["cache-control"] == "private, max-age=5"
    await _write(ingest_client, dev, list(range(3600, 4200, 10)))  # an upload of newer readings
    (p2, m2), (l2, n2) = fetch(past), fetch(live)
    assert (m2, n2) == (0, 1)  # the past answer is still valid; the live one is not
    assert p2.content == p1.content
    assert l2.json()["points"][1]["samples"] == 60
    await _write(ingest_client, dev, [5])  # late: inside the past range
    (p3, m3) = fetch(past)
    assert m3 == 1
    assert p3.json()["points"][0]["samples"] == p1.json()["points"][0]["samples"] + 1


async def test_capacity_reads_final_months_from_the_cache(
    loaded: str, redis_url: str, redis_client: Redis
) -> None:
    """The months of a capacity window that end before the device's newest reading (q-cap's: mid
    February 2026) come from the cache once computed; the answers equal those computed whole, without
    any cache. Europe/Amsterdam (Brussels' months) keeps these keys apart from other tests'."""
    stale = [k async for k in redis_client.scan_iter(match="p1:q:q-cap:*Europe/Amsterdam*")]
    if stale:
        await redis_client.delete(*stale)
    cached, plain = free_port(), free_port()
    with_redis = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(cached)], query_env(loaded, redis_url), cached
    ).start()
    without = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(plain)], query_env(loaded, None), plain
    ).start()
    try:
        path = "/v1/devices/q-cap/capacity"

        def ask(month: str) -> tuple[dict[str, Any], float, float]:
            hits, misses = _cache_count(with_redis, "hit"), _cache_count(with_redis, "miss")
            r = get(with_redis, path, month=month, tz="Europe/Amsterdam")
            assert r.status_code == 200, r.text
            return r.json(), _cache_count(with_redis, "hit") - hits, _cache_count(with_redis, "miss") - misses

        feb, feb_hits, feb_misses = ask("2026-02")
        assert (feb_hits, feb_misses) == (0, 12)  # the answer and its 11 final months
        mar, mar_hits, mar_misses = ask("2026-03")
        assert (mar_hits, mar_misses) == (10, 1)  # 2025-04 … 2026-01 cached; Feb and Mar computed
        for month, answer in (("2026-02", feb), ("2026-03", mar)):
            whole = get(without, path, month=month, tz="Europe/Amsterdam")
            assert whole.json() == answer
        assert (feb["peak_kw"], mar["rolling_12m_avg_kw"]) == (4.0, 3.833)
    finally:
        assert with_redis.stop() in CLEAN_EXITS, with_redis.logs()
        assert without.stop() in CLEAN_EXITS, without.logs()


def test_redis_down_answers_from_postgres_and_counts(loaded: str) -> None:
    port = free_port()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    proc = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)], query_env(loaded, dead_redis), port
    ).start()
    try:
        r = get(
            proc,
            "/v1/devices/q-dst/series",
            start="2026-03-29T00:00:00+01:00",
            end="2026-03-30T00:00:00+02:00",
            bucket="1d",
        )
        assert r.status_code == 200
        assert r.json()["points"][0]["import_kwh"] == pytest.approx(13.8)
        assert get(proc, "/v1/devices/q-dst/realtime").status_code == 200
        assert _cache_count(proc, "error") == 1
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()


def test_database_down_is_503_with_retry_after() -> None:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)],
        query_env(f"postgresql://postgres@127.0.0.1:{free_port()}/none", None),
        port,
        ready_path="/healthz",
    ).start()
    try:
        for path in ("/v1/devices", "/v1/devices/q-cap/capacity?month=2026-02", "/v1/devices/q-cap/realtime"):
            r = get(proc, path)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "5"
            assert r.headers["content-type"] == "application/problem+json"
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()


# ---- export ---------------------------------------------------------------------------------------


def test_export_raw_csv_streams_every_reading(api: ServiceProcess) -> None:
    with httpx.stream(
        "GET",
        api.base_url + "/v1/devices/q-sparse/export",
        params={"start": "2026-06-01T10:00:00Z", "end": "2026-06-01T10:01:00Z"},
        headers=ALL,
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert (
            r.headers["content-disposition"]
            == 'attachment; filename="q-sparse_raw_20260601T100000Z_20260601T100100Z.csv"'
        )
        lines = r.read().decode().splitlines()
    assert lines[0].startswith("ts,power_w,import_kwh,export_kwh,")
    assert len(lines) == 1 + 6
    assert lines[1].startswith("2026-06-01T10:00:05Z,7200.0,")


def test_export_buckets_as_ndjson(api: ServiceProcess) -> None:
    r = get(
        api,
        "/v1/devices/q-dst/export",
        start="2026-10-24T22:00:00Z",
        end="2026-10-26T23:00:00Z",
        bucket="1d",
        format="ndjson",
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert [row["start"] for row in rows] == ["2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"]
    assert rows[0]["import_kwh"] == pytest.approx(15.0)
    hours = get(
        api, "/v1/devices/q-dst/export", start="2026-10-25T00:00:00Z", end="2026-10-25T03:00:00Z", bucket="1h"
    )
    assert hours.text.splitlines()[1].startswith("2026-10-25T00:00:00Z,2026-10-25T01:00:00Z,60,")


def test_export_over_many_chunks(api: ServiceProcess) -> None:
    # 30 years of days: 11,000 buckets in 11 chunks; only the 2026 days carry readings.
    r = get(
        api, "/v1/devices/q-dst/export", start="2000-01-01T00:00:00Z", end="2030-01-01T00:00:00Z", bucket="1d"
    )
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert len(lines) == 1 + 10959  # 2000-01-01 … 2030-01-01 local: the end rounds up to a whole day
    # Local days with readings: 03-28 … 03-30 and 10-24 … 10-26 (each scene starts at 23:00 local).
    assert sum(1 for line in lines[1:] if line.split(",")[2] != "0") == 6


def test_export_rejects_bad_input(api: ServiceProcess) -> None:
    base = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    assert getp(api, "/v1/devices/q-dst/export", {**base, "bucket": "1mo"}).status_code == 422
    assert getp(api, "/v1/devices/q-dst/export", {**base, "format": "xml"}).status_code == 422
    assert getp(api, "/v1/devices/q-none/export", base).status_code == 404


def test_token_digest_is_what_the_configuration_holds() -> None:
    assert (
        hashlib.sha256(HASHED_TOKEN.encode()).hexdigest()
        in query_env("postgresql://x@127.0.0.1/y", None)["READ_TOKENS"]
    )


@pytest.mark.parametrize(
    ("device", "start", "end"),
    [
        ("q-cap", datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ("q-swap", datetime(2026, 5, 4, tzinfo=UTC), datetime(2026, 5, 7, tzinfo=UTC)),  # a two-epoch quarter
        ("q-sparse", datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC)),  # a gap
        ("q-dst", datetime(2026, 3, 29, 0, 30, tzinfo=UTC), datetime(2026, 3, 29, 5, tzinfo=UTC)),  # mid-run
    ],
)
async def test_sql_quarter_demand_equals_the_python_reference(
    loaded: str, device: str, start: datetime, end: datetime
) -> None:

    from p1_schema.capacity import QUARTER_DEMAND_SQL, QUARTER_S

    conn = await asyncpg.connect(loaded)
    try:
        rows = await fetch_quarters(conn, device, start, end)
        sql = await conn.fetch(
            QUARTER_DEMAND_SQL + " SELECT extract(epoch FROM bucket)::float8 AS s, kw FROM demand ORDER BY 1",
            device,
            start,
            end,
        )
    finally:
        await conn.close()
    count = int((end - start).total_seconds() // QUARTER_S)
    reference = [(d.start, d.kw) for d in quarter_demands(rows, start.timestamp(), count)]
    assert len(reference) > 3
    assert [r["s"] for r in sql] == [s for s, _ in reference]
    assert [r["kw"] for r in sql] == pytest.approx([kw for _, kw in reference], abs=1e-9)


# Every device the query tests wrote through ingest (late readings, glitches, replacements, backfills,
# meter peaks) or the bulk loader: the demands ingest kept are the rules applied afresh to the rollups.
_KEPT = "SELECT bucket, kw FROM capacity_quarters WHERE device_id = $1 ORDER BY bucket"
_AFRESH = (
    "SELECT bucket, kw FROM p1_capacity_quarters($1, TIMESTAMPTZ '2000-01-01 00:00:00+00',"
    " TIMESTAMPTZ '2100-01-01 00:00:00+00') ORDER BY bucket"
)


_DAYS = "SELECT day, quarters, buckets, kws FROM capacity_days WHERE device_id = $1 ORDER BY day"
_DAYS_AFRESH = (
    "SELECT date_bin('1 day', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS day, count(*)::int,"
    " (array_agg(bucket ORDER BY kw DESC, bucket))[1:5], (array_agg(kw ORDER BY kw DESC, bucket))[1:5]"
    " FROM capacity_quarters WHERE device_id = $1 GROUP BY 1 ORDER BY 1"
)


async def test_the_kept_quarter_demands_equal_the_rules_applied_afresh(bulk: str) -> None:
    conn = await asyncpg.connect(bulk)
    try:
        devices = [r["device_id"] for r in await conn.fetch("SELECT device_id FROM devices ORDER BY 1")]
        assert {"q-cap", "q-bulk"} <= set(devices)
        for device in devices:
            kept = [tuple(r) for r in await conn.fetch(_KEPT, device)]
            afresh = [tuple(r) for r in await conn.fetch(_AFRESH, device)]
            assert kept == afresh, device
            days = [tuple(r) for r in await conn.fetch(_DAYS, device)]
            assert days == [tuple(r) for r in await conn.fetch(_DAYS_AFRESH, device)], device
    finally:
        await conn.close()
