"""Issue 11 §5 and §7, the query side: every query and path parameter parser refuses what the contract
does not allow with a 422 naming the parameter where it was sent (``query.month``, not ``body.month``),
values with a trailing newline included; the supported time range is p1_contracts.timerange's; and a
trailing slash is a 404, never a redirect built from the client's Host header."""

import re
import shutil
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from query_scenes import PRICE, Meter, const, query_env, utc

from p1_contracts import timerange
from p1_peakguard.quarter import WINDOW_MONTHS
from p1_query.buckets import month_bounds
from p1_query.capacity import TOP_QUARTERS, ledger, months_back, parse_month
from p1_query.capacity_sql import top_quarters
from p1_servicekit.errors import Unprocessable
from p1_servicekit.spec import load_spec
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

ALL = {"Authorization": "Bearer tok-all"}
DAY = {"start": "2026-03-29T00:00:00+01:00", "end": "2026-03-30T00:00:00+02:00"}


def _get(
    api: ServiceProcess, path: str, params: dict[str, str] | None = None, **headers: str
) -> httpx.Response:
    return httpx.get(api.base_url + path, params=params, headers={**ALL, **headers}, timeout=30)


def _refused_at(r: httpx.Response, loc: list[str]) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["errors"][0]["loc"] == loc, body
    return body


@pytest.mark.parametrize(
    "month",
    [
        "0000-01",
        "0001-01",
        "9999-12",
        "1999-12",
        "2100-01",
        "2999-12",
        "2026-01\n",
        "2026-1",
        "2026-13",
        "٢٠٢٦-01",
    ],
)
def test_a_month_outside_the_range_or_malformed_is_a_422_at_query_month(
    api: ServiceProcess, month: str
) -> None:
    r = _get(api, "/v1/devices/q-cap/capacity", {"month": month})
    body = _refused_at(r, ["query", "month"])
    assert timerange.MONTHS_DESCRIPTION in body["errors"][0]["msg"]


@pytest.mark.parametrize(("month", "tz"), [("2000-01", "Europe/Brussels"), ("2099-12", "Pacific/Kiritimati")])
def test_the_first_and_last_supported_months_answer(api: ServiceProcess, month: str, tz: str) -> None:
    r = _get(api, "/v1/devices/q-cap/capacity", {"month": month, "tz": tz})
    assert r.status_code == 200, r.text
    assert r.json()["month"] == month


def test_month_patterns_of_the_spec_and_the_parser_are_timeranges_range() -> None:
    """openapi.yaml restates the range as patterns: every one of them, and parse_month, accept exactly
    the months of timerange."""
    patterns = _month_patterns(load_spec())
    # The capacity and bill parameters, Capacity.month, CapacityMonth.month, MeterPeak.month, Bill.month.
    assert len(patterns) == 6
    for year in (0, 1, 1999, 2000, 2026, 2099, 2100, 2999, 9999):
        for mon in (0, 1, 12, 13):
            text = f"{year:04d}-{mon:02d}"
            valid = timerange.month_in_range(year) and 1 <= mon <= 12
            for pattern in patterns:
                assert bool(re.search(pattern, text)) == valid, (pattern, text)
            try:
                parse_month(text)
                parsed = True
            except Unprocessable:
                parsed = False
            assert parsed == valid, text


def _month_patterns(node: object) -> list[str]:
    out = []
    if isinstance(node, dict):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.startswith("^20") and pattern.endswith("(0[1-9]|1[0-2])$"):
            out.append(pattern)
        for value in node.values():
            out += _month_patterns(value)
    elif isinstance(node, list):
        for value in node:
            out += _month_patterns(value)
    return out


async def test_the_ledger_of_the_first_month_leaves_out_the_months_before_it(
    ingest_client: httpx.AsyncClient, api: ServiceProcess
) -> None:
    """Found by the unsteered schemathesis run: readings of 2000-01-01 that lie in a local 1999-12 west of
    UTC (America/Adak, −10:00) made the ledger of 2000-01 list month 1999-12, which CapacityMonth.month
    cannot say; the answer broke its own model (a 422 about "body.month"). The window starts in 2000-01."""
    meter = Meter("q-first")
    meter.scene(utc(2000, 1, 1, 2), 16, const(2000))  # 1999-12-31 16:00 in Adak
    meter.scene(utc(2000, 1, 1, 12), 16, const(1000))  # 2000-01-01 02:00 in Adak
    await meter.upload(ingest_client)
    r = _get(api, "/v1/devices/q-first/capacity", {"month": "2000-01", "tz": "America/Adak"})
    assert r.status_code == 200, r.text
    assert [m["month"] for m in r.json()["months"]] == ["2000-01"]
    assert r.json()["peak_kw"] == 1.0  # 1 kW for whole quarters; the 2 kW of local 1999-12 count nowhere


RANGE = timerange.DESCRIPTION


@pytest.mark.parametrize(
    ("params", "loc", "says"),
    [
        ({**DAY, "start": "2026-03-29T00:00:00+01:00\n"}, "start", "RFC 3339"),
        ({**DAY, "end": "2026-03-30T00:00:00Z\n"}, "end", "RFC 3339"),
        ({**DAY, "start": "2026-03-29T00:00:00 ٠١:٠٠"}, "start", "RFC 3339"),  # a spaced offset, other digits
        ({**DAY, "tz": "Europe/Brussels\n"}, "tz", "IANA"),
        ({**DAY, "tz": "../../etc/passwd"}, "tz", "IANA"),
        ({**DAY, "bucket": "1h\n"}, "bucket", "one of"),
        ({**DAY, "start": "1999-12-31T23:59:59Z"}, "start", RANGE),
        ({**DAY, "end": "2100-01-01T00:00:00Z"}, "end", RANGE),
        ({**DAY, "start": "0001-01-01T00:00:00+01:00"}, "start", RANGE),  # not representable in UTC
    ],
)
@pytest.mark.parametrize("route", ["series", "export"])
def test_instants_zones_and_buckets_are_checked_whole(
    api: ServiceProcess, params: dict[str, str], loc: str, says: str, route: str
) -> None:
    body = _refused_at(_get(api, f"/v1/devices/q-dst/{route}", {"bucket": "1h", **params}), ["query", loc])
    assert says in body["detail"]


def test_the_edges_of_the_supported_range_answer(api: ServiceProcess) -> None:
    first = _get(
        api,
        "/v1/devices/q-dst/series",
        {"start": "2000-01-01T00:00:00Z", "end": "2000-01-01T03:00:00Z", "bucket": "1h", "tz": "UTC"},
    )
    last = _get(
        api,
        "/v1/devices/q-dst/series",
        {"start": "2099-12-31T21:00:00Z", "end": "2099-12-31T23:59:59Z", "bucket": "1h", "tz": "UTC"},
    )
    assert (first.status_code, last.status_code) == (200, 200)
    assert [p["samples"] for p in first.json()["points"]] == [0, 0, 0]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/devices/q-cap%0A/realtime",
        "/v1/devices/q-cap%0A/capacity?month=2026-02",
        "/v1/devices/q-dst%0A/series?start=2026-03-29T00:00:00Z&end=2026-03-30T00:00:00Z&bucket=1h",
        "/v1/devices/q-dst%0A/export?start=2026-03-29T00:00:00Z&end=2026-03-30T00:00:00Z",
    ],
)
def test_a_device_id_with_a_trailing_newline_is_a_422(api: ServiceProcess, path: str) -> None:
    _refused_at(httpx.get(api.base_url + path, headers=ALL, timeout=30), ["path", "device_id"])


@pytest.mark.parametrize(
    "path", ["/v1/devices/", "/v1/devices/q-cap/capacity/", "/v1/devices/q-cap/realtime/"]
)
def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_host_header(api: ServiceProcess, path: str) -> None:
    r = httpx.get(api.base_url + path, headers={**ALL, "Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert "location" not in r.headers
    assert "evil.example" not in r.text


def test_zones_come_from_the_pinned_tzdata_never_from_the_host(loaded: str, tmp_path: Path) -> None:
    """A host whose Europe/Brussels has Tokyo's rules and which knows one zone more (on PYTHONTZPATH, read
    before /usr/share/zoneinfo): the service still answers with the pinned tzdata's Brussels, and the
    extra zone, not in the contract's enum, is a 422."""
    zone_dir = tmp_path / "zoneinfo"
    (zone_dir / "Europe").mkdir(parents=True)
    (zone_dir / "Test").mkdir()
    shutil.copy(Path("/usr/share/zoneinfo/Asia/Tokyo"), zone_dir / "Europe" / "Brussels")
    shutil.copy(Path("/usr/share/zoneinfo/Europe/Brussels"), zone_dir / "Test" / "Nowhere")
    port = free_port()
    env = {**query_env(loaded, None), "PYTHONTZPATH": f"{zone_dir}:/usr/share/zoneinfo"}
    proc = ServiceProcess([console_script("p1-query"), "serve", "--port", str(port)], env, port).start()
    try:
        series = {**DAY, "bucket": "1h", "tz": "Europe/Brussels"}
        ok = httpx.get(proc.base_url + "/v1/devices/q-dst/series", params=series, headers=ALL, timeout=30)
        assert ok.status_code == 200, ok.text
        assert ok.json()["start"] == "2026-03-29T00:00:00+01:00"  # Tokyo's would be +09:00
        params = {"month": "2026-02", "tz": "Test/Nowhere"}
        r = httpx.get(proc.base_url + "/v1/devices/q-cap/capacity", params=params, headers=ALL, timeout=30)
        assert _refused_at(r, ["query", "tz"])["errors"][0]["type"] == "enum"
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()


def _brussels_as(key: str) -> ZoneInfo:
    with Path("/usr/share/zoneinfo/Europe/Brussels").open("rb") as data:
        return ZoneInfo.from_file(data, key=key)


async def test_a_zone_postgresql_does_not_know_gets_its_answers(loaded: str) -> None:
    """No statement names the zone: capacity hands PostgreSQL its local months as UTC boundaries, so a
    zone of the pinned tzdata that the database's (older) time zone data lacks is answered like any other
    (it was a 422 while PostgreSQL cut the months). Here Brussels' rules under a name PostgreSQL cannot
    know give Brussels' quarters and ledger, computed by hand in test_api's capacity test."""
    answers = {}
    conn = await asyncpg.connect(loaded)
    try:
        for zone in (_brussels_as("Test/Nowhere"), ZoneInfo("Europe/Brussels")):
            bounds = [month_bounds(*month, zone) for month in months_back(2026, 2, WINDOW_MONTHS)]
            edges = [start for start, _ in bounds] + [bounds[-1][1]]
            tops = await top_quarters(conn, "q-cap", edges, TOP_QUARTERS)
            answer = ledger(
                device_id="q-cap",
                year=2026,
                month=2,
                tz=zone,
                tz_name=str(zone.key),
                demands=tops,
                meter_peak_kw=None,
                price_eur_per_kw_year=PRICE,
            )
            answers[zone.key] = answer.model_dump(mode="json")
    finally:
        await conn.close()
    nowhere = answers["Test/Nowhere"]
    assert nowhere == {**answers["Europe/Brussels"], "tz": "Test/Nowhere"}
    assert (nowhere["peak_kw"], nowhere["peak_start"]) == (4.0, "2026-02-10T18:00:00+01:00")
    assert [month["month"] for month in nowhere["months"]] == ["2025-06", "2025-09", "2026-02"]
    assert nowhere["rolling_12m_avg_kw"] == 3.833
