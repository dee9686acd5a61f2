"""Fuzz targets: ingest's body parser and every query parameter parser, each given arbitrary bytes.

The one property: a parser either accepts, or refuses with a typed 4xx (``BadRequest``, ``Unprocessable``,
``Forbidden``, ``PayloadTooLarge``); any other exception is a finding. What ingest accepts must also be
storable as it is (no NUL in a string, every instant in ``p1_contracts.timerange``, finite numbers, a JSON
array that parses), since PostgreSQL refusing it later would be a 500.

A query target's input is its parameters joined by the byte 0xFF, which UTF-8 never contains: each part
is decoded as Starlette decodes a query string (UTF-8, invalid bytes replaced), so every string a client
can send is reachable. ``SEEDS`` are the values the tests send (issue 11's probes among them).
"""

import gzip
import itertools
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from p1_contracts import timerange
from p1_ingest.body import gunzip
from p1_ingest.copybin import HEADER, TRAILER, encode
from p1_ingest.fields import FIELDS
from p1_ingest.parse import parse_batch
from p1_query import capacity as cap
from p1_query.buckets import (
    BUCKETS,
    boundaries,
    check_range,
    check_size,
    iter_boundaries,
    month_bounds,
    outer_bounds,
    parse_bucket,
    parse_instant,
    parse_tz,
)
from p1_query.cache import etag_matches, etag_of
from p1_query.export import CHUNK, check_export_size, filename
from p1_query.handlers import check_device_id
from p1_servicekit.errors import BadRequest, Forbidden, PayloadTooLarge, Unprocessable
from p1_servicekit.tokens import bearer_token, parse_read_tokens

NOW: Final = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WRITABLE: Final = frozenset({"dev-1", "fuzz"})
# What the routes let through to the parsers (their Query max_length) is checked by FastAPI first, so a
# longer value never reaches them; the fuzzer still tries up to this.
MAX_PARAM: Final = 96
DECOMPRESSED_LIMIT: Final = 1 << 20
TYPED_4XX: Final = (BadRequest, Unprocessable, Forbidden, PayloadTooLarge)
SEP: Final = b"\xff"
EXPORT_BUCKETS: Final = ("raw", "15m", "1h", "1d")
FORMATS: Final = ("csv", "ndjson")

Target = Callable[[bytes], None]


def params(data: bytes, count: int) -> list[str]:
    """``count`` query parameter values from the input (missing ones empty)."""
    parts = data.split(SEP)[:count]
    parts += [b""] * (count - len(parts))
    return [p[:MAX_PARAM].decode("utf-8", "replace") for p in parts]


def _storable(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, datetime):
        return timerange.in_range(value)
    return value is None or isinstance(value, int)


def ingest_body(data: bytes) -> None:
    try:
        batch = parse_batch(data, NOW, WRITABLE.__contains__)
    except TYPED_4XX:
        return
    assert batch.device_id in WRITABLE
    meter = batch.meter
    strings = [] if meter is None else [meter.serial, meter.model, meter.protocol_version]
    assert all(map(_storable, strings)), meter
    for name, column in batch.columns.items():
        assert len(column) == len(batch), name
        assert all(map(_storable, column)), name
    stream = encode(batch, None, 0)  # what the staged COPY sends the database
    assert stream.startswith(HEADER)
    assert stream.endswith(TRAILER)


def ingest_gzip(data: bytes) -> None:
    """The first byte says how the rest arrives: 0 as sent (any bytes as a gzip stream), 1 compressed
    once, 2 compressed twice (a gzip inside a gzip: the JSON parser sees gzip bytes)."""
    mode, body = (data[0] % 3, data[1:]) if data else (0, b"")
    for _ in range(mode):
        body = gzip.compress(body, mtime=0)
    try:
        inflated = gunzip(body, DECOMPRESSED_LIMIT)
    except TYPED_4XX:
        assert mode == 0, "a valid gzip stream was refused"
        return
    if mode == 1:
        assert inflated == data[1:]
    ingest_body(inflated)


def device_id(data: bytes) -> None:
    (value,) = params(data, 1)
    try:
        checked = check_device_id(value)
    except Unprocessable:
        return
    assert checked.isascii()
    assert "\n" not in checked
    assert 1 <= len(checked) <= 64


_ETAG: Final = etag_of(b"fuzz")
_TABLE: Final = parse_read_tokens("tok-a:dev-1,sha256:" + "ab" * 32 + ":*")


def headers(data: bytes) -> None:
    """If-None-Match and Authorization, as Starlette hands them over (latin-1)."""
    parts = data.split(SEP, 1)
    inm, authorization = parts[0].decode("latin-1"), parts[-1].decode("latin-1")
    matched = etag_matches(inm, _ETAG)
    assert not matched or _ETAG in inm or "*" in inm
    token = bearer_token(authorization)
    if token is not None:
        assert token
        assert token == token.strip()
        assert authorization.split(" ", 1)[0].lower() == "bearer"
    scope = _TABLE.scope_of(token or authorization)
    assert scope is None or (token or authorization) == "tok-a"


def series_params(data: bytes) -> None:
    """What GET /series does with its parameters before any database work, in the route's order."""
    start, end, bucket, tz = params(data, 4)
    try:
        b = parse_bucket(bucket)
        zone = parse_tz(tz)
        s, e = parse_instant(start, "start"), parse_instant(end, "end")
        check_size(s, e, b)
        first, last = outer_bounds(s, e, b, zone)
        bounds = boundaries(s, e, b, zone)
    except Unprocessable:
        return
    assert b in BUCKETS
    assert (bounds[0], bounds[-1]) == (first, last)
    assert bounds[0] <= s
    assert bounds[-1] >= e


def export_params(data: bytes) -> None:
    start, end, bucket, fmt, tz = params(data, 5)
    try:
        b = parse_bucket(bucket, EXPORT_BUCKETS)
        f = parse_bucket(fmt, FORMATS, name="format")
        zone = parse_tz(tz)
        s, e = parse_instant(start, "start"), parse_instant(end, "end")
        check_range(s, e)
        check_export_size(s, e, b)
    except Unprocessable:
        return
    assert f in FORMATS
    name = filename("fuzz", b, s, e, f)  # type: ignore[arg-type]  # parse_bucket checked it
    assert name.isascii()
    assert '"' not in name
    if b != "raw":
        grid = zone if b == "1d" else ZoneInfo("UTC")
        first = list(itertools.islice(iter_boundaries(s, e, b, grid), CHUNK + 1))
        assert first == sorted(set(first))


def capacity_params(data: bytes) -> None:
    month, tz = params(data, 2)
    try:
        year, mon = cap.parse_month(month)
        zone = parse_tz(tz)
    except Unprocessable:
        return
    start, end = month_bounds(year, mon, zone)
    w_start, w_end = cap.window(year, mon, zone)
    assert w_start <= start < end == w_end
    answer = cap.ledger(
        device_id="fuzz",
        year=year,
        month=mon,
        tz=zone,
        tz_name=tz,
        demands=[],
        meter_peak_kw=None,
        price_eur_per_kw_year=50.0,
    )
    assert answer.month == month


TARGETS: Final[dict[str, Target]] = {
    "ingest_body": ingest_body,
    "ingest_gzip": ingest_gzip,
    "device_id": device_id,
    "headers": headers,
    "series_params": series_params,
    "export_params": export_params,
    "capacity_params": capacity_params,
}


def _reading(i: int, **changes: object) -> dict[str, object]:
    return {"ts": f"2026-05-01T10:00:{i:02d}Z", "power_w": 500.0, "import_kwh": 1000.0 + i / 1000, **changes}


def _body(**batch: object) -> bytes:
    return json.dumps({"device_id": "dev-1", "samples": [_reading(0), _reading(1)], **batch}).encode()


_BODIES: Final = [
    _body(),
    _body(meter={"serial": "E0031234", "model": "HWE-P1", "protocol_version": 50}),
    _body(meter={"serial": "A\x00B"}),
    _body(meter=None, samples=[_reading(0, gas_m3=None, month_peak_ts="2026-05-01T09:00:00+02:00")]),
    _body(samples=[_reading(0, ts="0001-01-01T00:00:00Z")]),
    _body(samples=[_reading(0, ts="0001-01-01T00:00:00+01:00")]),
    _body(samples=[_reading(0, ts="9999-12-31T23:59:59-01:00")]),
    _body(samples=[_reading(0, ts="2026-05-01T10:00:00.123456+05:30")]),
    _body(samples=[_reading(0, import_kwh=0)]),
    _body(device_id="other"),
    b'{"device_id":"dev-1","device_id":"dev-1","samples":[{"ts":"2026-05-01T10:00:00Z","power_w":1,'
    b'"import_kwh":1}]}',
    b'{"device_id":"dev-1","samples":[{"ts":"2026-05-01T10:00:00Z","ts":"2026-05-01T10:00:01Z","power_w":1,'
    b'"import_kwh":1}]}',
    b'{"device_id":"dev-1","x":' + b"[" * 3000 + b"]" * 3000 + b',"samples":[]}',
    b'{"device_id":"dev\\u002d1","samples":[{"ts":"2026-05-01T10:00:00Z","power_w":1e400,"import_kwh":1}]}',
    b"",
    b"null",
    b"[]",
]
_INSTANTS: Final = [
    "2026-03-29T00:00:00+01:00",
    "2026-03-30T00:00:00Z",
    "2026-03-29T00:00:00 01:00",
    "2026-03-29T00:00:00+01:00\n",
    "0001-01-01T00:00:00+01:00",
    "1999-12-31T23:59:59Z",
    "2099-12-31T23:59:59-12:00",
    "2000-01-01T00:00:00+14:00",
]
_ZONES: Final = [
    "Europe/Brussels",
    "UTC",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
    "../etc",
]
_MONTHS: Final = [
    "2026-01",
    "0000-01",
    "0001-01",
    "9999-12",
    "2000-01",
    "2099-12",
    "2026-01\n",
    "٢٠٢٦-01",
]


def dictionary() -> list[bytes]:
    """Tokens the mutator may splice in (libFuzzer's ``-dict``): the keys, names and spellings the parsers
    look for, so that inputs reach past the first check."""
    words = [f.name for f in FIELDS] + ["device_id", "samples", "meter", "serial", "model"]
    words += [*BUCKETS, *EXPORT_BUCKETS, *FORMATS, *_ZONES, *_MONTHS, *_INSTANTS]
    words += ["T", "Z", "+01:00", "-12:00", "+14:00", ".123456", "2000-01-01", "2099-12-31", "null"]
    words += ["protocol_version", "\\u0000"]
    return sorted({w.encode() for w in words} | {SEP, b'":', b'",', b"},{", b"[{", b"}]"})


def _join(*values: str) -> bytes:
    return SEP.join(v.encode() for v in values)


SEEDS: Final[dict[str, list[bytes]]] = {
    "ingest_body": _BODIES,
    "ingest_gzip": [bytes([mode]) + body for mode in (0, 1, 2) for body in _BODIES[:4]],
    "headers": [
        _ETAG.encode() + SEP + b"Bearer tok-a",
        b'W/"x", *' + SEP + b"bearer   tok-a",
        b"" + SEP + b"Bearer",
        b"\xff\xfe" + SEP + b"Basic tok-a",
    ],
    "device_id": [v.encode() for v in ("dev-1", "q-cap\n", "a" * 65, "../x", "dev 1", "' OR 1=1 --", "%s%n")],
    "series_params": [
        _join(s, e, b, z)
        for (s, e), b, z in zip(
            itertools.pairwise(_INSTANTS), itertools.cycle(BUCKETS), itertools.cycle(_ZONES), strict=False
        )
    ],
    "export_params": [
        _join(s, e, b, f, z)
        for (s, e), b, f, z in zip(
            itertools.pairwise(_INSTANTS),
            itertools.cycle(EXPORT_BUCKETS),
            itertools.cycle(FORMATS),
            itertools.cycle(_ZONES),
            strict=False,
        )
    ],
    "capacity_params": [_join(m, z) for m, z in zip(_MONTHS, itertools.cycle(_ZONES), strict=False)],
}
