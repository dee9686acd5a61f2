"""Hostile bodies: each is a 400/403/422 from ``parse_batch``, never anything else (no RecursionError,
no OverflowError, nothing PostgreSQL would refuse later), and duplicate keys are never last-wins."""

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p1_contracts import timerange
from p1_ingest.jsonkeys import TOO_DEEP, check_duplicates, may_have_duplicates
from p1_ingest.parse import _Unsure, fast_parse, parse_batch
from p1_servicekit.errors import BadRequest, Forbidden, Unprocessable

NOW = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
OK_TS = "2026-11-29T12:00:00Z"
Json = dict[str, Any]


def reading(**changes: object) -> Json:
    return {"ts": OK_TS, "power_w": 1.0, "import_kwh": 2.0, "export_kwh": 0.0, **changes}


def body(*readings: Json, **top: object) -> bytes:
    return json.dumps({"device_id": "dev-1", "samples": list(readings) or [reading()], **top}).encode()


def refused(raw: bytes) -> Unprocessable | BadRequest:
    with pytest.raises((Unprocessable, BadRequest)) as info:
        parse_batch(raw, NOW, lambda _: True)
    assert isinstance(info.value, Unprocessable | BadRequest)
    return info.value


def locs(raw: bytes) -> list[tuple[str | int, ...]]:
    err = refused(raw)
    assert isinstance(err, Unprocessable), err
    return [e.loc for e in err.errors]


# --- JSON nested beyond every decoder's limit -------------------------------------------------


@pytest.mark.parametrize("where", ["top", "reading", "meter"])
@pytest.mark.parametrize("bracket", ["[]", "{}"])
def test_json_nested_50000_deep_in_an_unknown_field_is_400(where: str, bracket: str) -> None:
    opening, closing = bracket
    inner = '{"a":' if opening == "{" else "["
    deep = inner * 50_000 + ("1" if opening == "{" else "") + closing * 50_000
    one = json.dumps(reading())
    if where == "top":
        raw = f'{{"device_id":"dev-1","x":{deep},"samples":[{one}]}}'
    elif where == "reading":
        raw = '{"device_id":"dev-1","samples":[%s]}' % one.replace("{", f'{{"x":{deep},', 1)  # noqa: UP031
    else:
        raw = f'{{"device_id":"dev-1","meter":{{"serial":"s","x":{deep}}},"samples":[{one}]}}'
    err = refused(raw.encode())
    assert err.status == 400
    assert err.detail == TOO_DEEP


# --- control characters in the meter's strings --------------------------------------------------


@pytest.mark.parametrize("field", ["serial", "model"])
@pytest.mark.parametrize("char", ["\x00", "\x01", "\n", "\x1f", "\x7f", "\x85", "\x9f"])
def test_a_control_character_in_the_meter_is_422_naming_the_field(field: str, char: str) -> None:
    meter = {"serial": "4E47475955", field: f"AB{char}CD"}
    assert locs(body(meter=meter)) == [("body", "meter", field)]


@pytest.mark.parametrize("text", ["ISKRA  2M550T-101", "Landis+Gyr E360 (ü)", "x" * 128])
def test_printable_meter_strings_are_taken(text: str) -> None:
    parsed = parse_batch(body(meter={"serial": text[:128], "model": text}), NOW, lambda _: True)
    assert parsed.meter is not None
    assert parsed.meter.model == text


# --- the supported time range -------------------------------------------------------------------

OUT_OF_RANGE = [
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: overflows on conversion
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    "1999-12-31T23:59:59.999999Z",
    "2000-01-01T00:59:59+01:00",  # 1999-12-31T23:59:59Z
    "2100-01-01T00:00:00Z",  # the end is exclusive
]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize("field", ["ts", "month_peak_ts", "gas_ts", "water_ts"])
def test_a_date_time_outside_the_range_is_422_naming_the_reading_and_the_range(
    field: str, value: str
) -> None:
    raw = body(reading(), {**reading(ts="2026-11-29T12:00:01Z"), field: value})
    err = refused(raw)
    assert isinstance(err, Unprocessable)
    assert [e.loc for e in err.errors] == [("body", "samples", 1, field)]
    assert timerange.DESCRIPTION in err.errors[0].msg
    assert f"body.samples.1.{field}" in err.detail


@pytest.mark.parametrize(
    "value", ["2000-01-01T00:00:00Z", "2000-01-01T01:00:00+01:00", "2099-12-31T23:59:59.999999Z"]
)
def test_the_ends_of_the_range_are_taken(value: str) -> None:
    parsed = parse_batch(body(reading(month_peak_ts=value, gas_ts=value)), NOW, lambda _: True)
    assert parsed.columns["gas_ts"] == [datetime.fromisoformat(value)]


def test_every_reading_outside_the_range_is_named_on_the_model_path_too() -> None:
    # "é" in the meter sends the body past the fast path, to the contract model.
    raw = body(
        reading(ts="0001-01-01T00:00:00+01:00"),
        reading(),
        reading(ts="9999-12-31T23:59:59-01:00"),
        meter={"serial": "é"},
    )
    with pytest.raises(_Unsure):
        fast_parse(raw)
    assert locs(raw) == [("body", "samples", 0, "ts"), ("body", "samples", 2, "ts")]


# --- duplicate keys -----------------------------------------------------------------------------

DUPLICATES = [
    ('{"device_id":"dev-1","device_id":"dev-2","samples":[R]}', ("body", "device_id")),
    ('{"device_id":"dev-1","samples":[R],"samples":[R]}', ("body", "samples")),
    (
        '{"device_id":"dev-1","samples":[R,{"ts":"2026-11-29T12:00:01Z","power_w":1,"power_w":9999,'
        '"import_kwh":2,"export_kwh":0}]}',
        ("body", "samples", 1, "power_w"),
    ),
    ('{"device_id":"dev-1","meter":{"serial":"a","serial":"b"},"samples":[R]}', ("body", "meter", "serial")),
    ('{"device_id":"dev-1","meter":null,"meter":{"serial":"b"},"samples":[R]}', ("body", "meter")),
    # a known key twice where one of the two is null
    (
        '{"device_id":"dev-1","samples":[{"ts":"2026-11-29T12:00:00Z","power_w":1,"import_kwh":2,'
        '"export_kwh":0,"gas_m3":5,"gas_m3":null}]}',
        ("body", "samples", 0, "gas_m3"),
    ),
    # spelled with an escape: the same key to a decoder
    (
        '{"device_id":"dev-1","samples":[{"ts":"2026-11-29T12:00:00Z","\\u0074s":"2026-11-29T12:00:09Z",'
        '"power_w":1,"import_kwh":2,"export_kwh":0}]}',
        ("body", "samples", 0, "ts"),
    ),
    # whitespace before a colon
    ('{"device_id" : "dev-1", "device_id" : "dev-2", "samples" : [R]}', ("body", "device_id")),
    # inside an unknown field (ignored, but a duplicate all the same)
    ('{"device_id":"dev-1","x":{"a":1,"a":2},"samples":[R]}', ("body", "x", "a")),
    # a duplicate hidden behind a colon inside a string would need the count to err the other way
    (
        '{"device_id":"dev-1","meter":{"serial":"a:b:c","serial":"d"},"samples":[R]}',
        ("body", "meter", "serial"),
    ),
]


@pytest.mark.parametrize(("raw", "loc"), DUPLICATES)
def test_a_duplicate_key_anywhere_is_422_naming_it(raw: str, loc: tuple[str | int, ...]) -> None:
    raw_bytes = raw.replace("R", json.dumps(reading())).encode()
    assert locs(raw_bytes) == [loc]


@pytest.mark.parametrize(
    "raw",
    [
        body(reading(), reading(ts="2026-11-29T12:00:01Z", gas_m3=1.5, gas_ts="2026-11-29T11:00:00+01:00")),
        body(meter=None),
        body(meter={"serial": "a", "model": None}),
        json.dumps(
            {"device_id": "dev-1", "samples": [reading(gas_m3=None)], "meter": None}, indent=2
        ).encode(),
        msgspec.json.encode(
            {"device_id": "dev-1", "samples": [reading(month_peak_ts="2026-11-04T10:15:00+00:00")]}
        ),
        body(reading(newer_field={"nested": [1, {"k": "v"}]}), unknown="x"),  # tolerant reader
    ],
)
def test_bodies_without_duplicates_are_taken(raw: bytes) -> None:
    assert len(parse_batch(raw, NOW, lambda _: True)) == len(json.loads(raw)["samples"])


def test_the_count_spares_edge_bodies_the_exact_check() -> None:
    # What an edge sends (compact JSON, nulls left out, the meter null or present) never needs the
    # exact check: the normal path stays fast.
    readings = [
        reading(
            ts=f"2026-11-29T12:00:{i:02d}Z",
            gas_m3=1.0,
            gas_ts="2026-11-29T12:00:00+01:00",
            month_peak_ts="2026-11-04T10:15:00Z",
        )
        for i in range(50)
    ]
    for meter in (None, {"serial": "4E47475955", "model": "ISKRA  2M550T-101", "protocol_version": 50}):
        raw = msgspec.json.encode({"device_id": "dev-1", "meter": meter, "samples": readings})
        p = fast_parse(raw)
        required = [
            c for name, c in p.columns.items() if name in ("ts", "power_w", "import_kwh", "export_kwh")
        ]
        optional = [
            c for name, c in p.columns.items() if name not in ("ts", "power_w", "import_kwh", "export_kwh")
        ]
        assert not may_have_duplicates(raw, p.meter, sum(map(len, required)), optional, p.string_colons)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_duplicated_member_is_always_found(data: st.DataObject) -> None:
    """Property: take a valid batch, repeat one member of one of its objects (any value): the body
    is refused as a duplicate, whatever else it holds."""
    n = data.draw(st.integers(1, 4))
    readings = [
        reading(
            ts=f"2026-11-29T12:00:{i:02d}" + data.draw(st.sampled_from(["Z", "+00:00", "+01:00"])),
            gas_m3=data.draw(st.none() | st.floats(0, 1e6)),
            gas_ts=data.draw(st.none() | st.just("2026-11-29T11:00:00Z")),
        )
        for i in range(n)
    ]
    meter = data.draw(st.none() | st.just({"serial": "s:1", "model": None}))
    doc: Json = {"device_id": "dev-1", "meter": meter, "samples": readings}
    objects: list[Json] = [doc, *readings] + ([meter] if meter else [])
    target = data.draw(st.sampled_from(objects))
    key = data.draw(st.sampled_from(sorted(target)))
    value = data.draw(st.none() | st.integers(0, 9) | st.just("2026-11-29T12:00:00Z"))
    target[_Twin(key)] = value  # a second member with the same key
    compact = data.draw(st.booleans())
    raw = json.dumps(doc, separators=(",", ":") if compact else None).encode()
    with pytest.raises((Unprocessable, BadRequest)) as info:
        parse_batch(raw, NOW, lambda _: True)
    if isinstance(info.value, Unprocessable) and any(e.type == "duplicate_key" for e in info.value.errors):
        return
    with pytest.raises(Unprocessable) as exact:  # refused for another reason: the exact check agrees
        check_duplicates(raw)
    assert exact.value.errors[0].type == "duplicate_key"


class _Twin(str):
    """A key that json.dumps writes like its original but that a dict keeps apart from it."""

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other


# --- a brief fuzz: whatever bytes arrive, the answer is a 4xx or a batch ---------------------------

_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
_FIELDS = st.sampled_from(["ts", "power_w", "import_kwh", "export_kwh", "gas_ts", "month_peak_ts", "tariff"])


@st.composite
def near_batches(draw: st.DrawFn) -> bytes:
    samples = draw(st.lists(st.dictionaries(_FIELDS, _JSONISH | st.sampled_from(OUT_OF_RANGE)), max_size=3))
    doc = {"device_id": draw(st.text(max_size=8) | st.just("dev-1")), "samples": samples}
    if draw(st.booleans()):
        doc["meter"] = draw(_JSONISH)
    raw = json.dumps(doc).encode()
    cut = draw(st.integers(0, len(raw)))
    return draw(st.sampled_from([raw, raw[:cut], raw.replace(b'"', b"'", 1), raw + b"x"]))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | near_batches())
def test_fuzz_parse_batch_answers_only_4xx(raw: bytes) -> None:
    with contextlib.suppress(BadRequest, Unprocessable, Forbidden):
        parse_batch(raw, NOW, lambda device: device == "dev-1")
