"""Issue 11 §7: a trailing slash is a 404, never a redirect built from the client's Host header; a key
twice in one JSON object is a 422 naming it, never "the last one wins". (Readings before the supported
range: test_time_range.)"""

import json

import pytest
from hostile_kit import (
    READ_ALL,
    WRITE_TOKENS,
    Meter,
    Stack,
    assert_problem,
    auth,
    post,
    still_works,
    writes_nothing,
)

DEVICE = "h-dup"
TOKEN = WRITE_TOKENS[DEVICE]


@pytest.fixture(scope="module")
def meter() -> Meter:
    return Meter(DEVICE)


@pytest.mark.parametrize(
    ("service", "method", "path"),
    [
        ("ingest", "POST", "/v1/samples/"),
        ("ingest", "GET", "/healthz/"),
        ("query", "GET", "/v1/devices/"),
        ("query", "GET", f"/v1/devices/{DEVICE}/realtime/"),
        ("query", "GET", f"/v1/devices/{DEVICE}/capacity/?month=2026-01"),
    ],
)
def test_a_trailing_slash_is_a_404_with_no_location_from_a_hostile_host(
    stack: Stack, service: str, method: str, path: str
) -> None:
    client = stack.to_ingest if service == "ingest" else stack.to_query
    token = TOKEN if service == "ingest" else READ_ALL
    r = client.request(
        method,
        path,
        headers={**auth(token), "Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        follow_redirects=False,
    )
    assert_problem(r, 404)
    assert "location" not in r.headers
    assert "evil.example" not in r.text


def _reading_text(meter: Meter) -> str:
    return json.dumps(meter.readings(1)[0])


@pytest.mark.parametrize(
    ("template", "loc"),
    [
        ('{"device_id":"D","device_id":"D","samples":[R]}', ["body", "device_id"]),
        ('{"device_id":"D","samples":[R],"samples":[R]}', ["body", "samples"]),
        ('{"device_id":"D","samples":[RTS]}', ["body", "samples", 0, "ts"]),
        ('{"device_id":"D","samples":[RPOWER]}', ["body", "samples", 0, "power_w"]),
        ('{"device_id":"D","meter":{"serial":"A","serial":"B"},"samples":[R]}', ["body", "meter", "serial"]),
        ('{"device_id":"D","meter":{"serial":"A"},"meter":{"serial":"A"},"samples":[R]}', ["body", "meter"]),
        ('{"device_id":"h-other","device_id":"D","samples":[R]}', ["body", "device_id"]),
    ],
    ids=["device_id", "samples", "ts", "power_w", "serial", "meter", "another device first"],
)
def test_a_key_twice_in_an_object_is_a_422_naming_it(
    stack: Stack, meter: Meter, template: str, loc: list[object]
) -> None:
    r1, r2 = _reading_text(meter), _reading_text(meter)
    body = (
        template.replace("RTS", r1[:-1] + ',"ts":' + json.dumps(json.loads(r2)["ts"]) + "}")
        .replace("RPOWER", r1[:-1] + ',"power_w":99999}')
        .replace("R", r1)
        .replace('"D"', f'"{DEVICE}"')
    )
    with writes_nothing(stack, DEVICE):
        assert_problem(post(stack, body.encode(), TOKEN), 422, loc)
    still_works(stack, meter)


def test_a_second_device_id_of_another_device_is_a_403(stack: Stack, meter: Meter) -> None:
    """Last-wins would read h-other: this token may not write it, whatever the body's first key says
    (a token of another device is refused before the body's other faults, see p1_ingest.parse)."""
    body = f'{{"device_id":"{DEVICE}","device_id":"h-other","samples":[{_reading_text(meter)}]}}'
    with writes_nothing(stack, DEVICE), writes_nothing(stack, "h-other"):
        problem = assert_problem(post(stack, body.encode(), TOKEN), 403)
    assert "h-other" in problem["detail"]
    still_works(stack, meter)
