"""Issue 11 §1 (and §5, §7 for instants): one reading outside the supported time range
(``p1_contracts.timerange``: 2000-01-01Z ≤ t < 2100-01-01Z) is a 422 naming its index, stores nothing,
and cannot break the device: it keeps accepting uploads and every token that sees it can list it.
Readings already stored outside the range are repaired by migration 0005 (its tests are in
services/ingest/tests)."""

import pytest
from hostile_kit import (
    READ_ALL,
    READ_RANGE,
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

from p1_contracts import timerange

DEVICE = "h-range"
TOKEN = WRITE_TOKENS[DEVICE]


@pytest.fixture(scope="module")
def meter(stack: Stack) -> Meter:
    """h-range with a few good readings stored, as a device that has been running."""
    m = Meter(DEVICE)
    assert post(stack, batch(DEVICE, m.readings(3)), TOKEN).status_code == 200
    return m


@pytest.mark.parametrize(
    "ts",
    [
        "0001-01-01T00:00:00Z",  # made devices.first_seen -infinity: every later upload was a 500
        "0001-01-01T00:00:00+01:00",  # not representable in UTC: a 500 (date out of range)
        "1999-12-31T23:59:59Z",  # before the range: stored where no query could read it
        "2100-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_a_reading_outside_the_range_is_a_422_naming_its_index(stack: Stack, meter: Meter, ts: str) -> None:
    samples = meter.readings(3)
    samples[2] = {**samples[2], "ts": ts}
    with writes_nothing(stack, DEVICE):
        body = assert_problem(post(stack, batch(DEVICE, samples), TOKEN), 422, ["body", "samples", 2, "ts"])
    assert timerange.DESCRIPTION in body["detail"]
    still_works(stack, meter)
    for token in (READ_ALL, READ_RANGE):
        assert get(stack, "/v1/devices", token=token).status_code == 200


@pytest.mark.parametrize("name", ["month_peak_ts", "gas_ts", "water_ts"])
def test_every_instant_of_a_reading_is_held_to_the_range(stack: Stack, meter: Meter, name: str) -> None:
    samples = meter.readings(1)
    samples[0] = {**samples[0], name: "0001-01-01T00:00:00Z"}
    with writes_nothing(stack, DEVICE):
        assert_problem(post(stack, batch(DEVICE, samples), TOKEN), 422, ["body", "samples", 0, name])
    still_works(stack, meter)


@pytest.mark.parametrize(
    ("route", "params", "loc"),
    [
        ("series", {"start": "0001-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "bucket": "1d"}, "start"),
        ("series", {"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z", "bucket": "1mo"}, "end"),
        ("export", {"start": "0001-01-01T00:00:00+01:00", "end": "2026-01-01T00:00:00Z"}, "start"),
        (
            "export",
            {"start": "1970-01-01T00:00:00Z", "end": "2999-12-31T00:00:00Z", "bucket": "15m"},
            "start",
        ),
    ],
)
def test_a_query_outside_the_range_is_a_422_naming_the_parameter(
    stack: Stack, meter: Meter, route: str, params: dict[str, str], loc: str
) -> None:
    body = assert_problem(get(stack, f"/v1/devices/{DEVICE}/{route}", params), 422, ["query", loc])
    assert timerange.DESCRIPTION in body["detail"]
