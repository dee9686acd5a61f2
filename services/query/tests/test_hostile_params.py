"""Issue 11 §5 and §7, the query side: every query and path parameter parser refuses what the contract
does not allow with a 422 naming the parameter where it was sent (``query.month``, not ``body.month``),
values with a trailing newline included; the supported time range is p1_contracts.timerange's; and a
trailing slash is a 404, never a redirect built from the client's Host header."""

import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from query_scenes import query_env

from p1_contracts import timerange
from p1_query.capacity import parse_month
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
    assert len(patterns) == 3  # the capacity parameter, Capacity.month, CapacityMonth.month
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
        if isinstance(pattern, str) and pattern.startswith("^20"):
            out.append(pattern)
        for value in node.values():
            out += _month_patterns(value)
    elif isinstance(node, list):
        for value in node:
            out += _month_patterns(value)
    return out


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


def test_a_zone_python_knows_but_postgresql_does_not_is_answered(loaded: str, tmp_path: Path) -> None:
    """No statement names the zone (capacity hands PostgreSQL its months as UTC boundaries), so a zone
    the service's time zone data has and the database's lacks (newer tzdata in the service) is
    answered like any other. Here a zone only the query process knows: a copy of Europe/Brussels under
    a new name on PYTHONTZPATH, which must give Brussels' answers, asked with a new name."""
    zone_dir = tmp_path / "zoneinfo"
    (zone_dir / "Test").mkdir(parents=True)
    shutil.copy(Path("/usr/share/zoneinfo/Europe/Brussels"), zone_dir / "Test" / "Nowhere")
    port = free_port()
    env = {**query_env(loaded, None), "PYTHONTZPATH": f"{zone_dir}:/usr/share/zoneinfo"}
    proc = ServiceProcess([console_script("p1-query"), "serve", "--port", str(port)], env, port).start()
    try:
        answers = {}
        for tz in ("Test/Nowhere", "Europe/Brussels"):
            params = {"month": "2026-02", "tz": tz}
            r = _get(proc, "/v1/devices/q-cap/capacity", params)
            assert r.status_code == 200, r.text
            answers[tz] = r.json()
        nowhere = answers["Test/Nowhere"]
        assert nowhere == {**answers["Europe/Brussels"], "tz": "Test/Nowhere"}
        # test_api's ledger by hand: the peak quarter at 18:00 local (UTC+1), the three months with data.
        assert (nowhere["peak_kw"], nowhere["peak_start"]) == (4.0, "2026-02-10T18:00:00+01:00")
        assert [m["month"] for m in nowhere["months"]] == ["2025-06", "2025-09", "2026-02"]
        assert nowhere["rolling_12m_avg_kw"] == 3.833
        series = {**DAY, "bucket": "1h", "tz": "Test/Nowhere"}
        assert _get(proc, "/v1/devices/q-dst/series", series).status_code == 200
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()
