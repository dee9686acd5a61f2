"""Issue 12 §9: every time and every number of every query answer in one form (p1_query.forms, README
"HTTP API"), over HTTP against the real query process.

Instants in UTC with ``Z``; bucket boundaries in the offset of the zone they were cut in; seconds always,
a fraction only when it is not zero (``p1_contracts.timeform``). Whole-number fields (``tariff``,
``protocol_version``, ``samples``) are JSON integers, every other number a float (``7200.0``, never
``7200``). Realtime reads byte for byte the same from Redis, whatever form its writer used, as from
PostgreSQL."""

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Final, get_args

import httpx
import pytest
from annotated_types import Ge, Le
from query_scenes import Meter, const, utc
from redis.asyncio import Redis

from p1_contracts.models import Sample
from p1_contracts.timeform import instant
from p1_query.fields import SAMPLE_TIMES, SAMPLE_WHOLES
from p1_servicekit.testing import ServiceProcess

ALL = {"Authorization": "Bearer tok-all"}
DEVICE: Final = "q-forms"
TS: Final = utc(2026, 4, 2, 10, 0)  # the device's one reading
PLUS_ONE: Final = timezone(timedelta(hours=1))
LATEST: Final = f"p1:latest:{DEVICE}"
_SECONDS: Final = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.(?!0{6})\d{6})?"
INSTANT: Final = re.compile(_SECONDS + "Z")


def boundary(offsets: str) -> re.Pattern[str]:
    """A boundary written in one of ``offsets`` (a regex alternation such as ``+01:00|+02:00``)."""
    return re.compile(f"{_SECONDS}({offsets})")


def _value(name: str, moment: datetime) -> object:
    """A valid value of any Sample field: times half an hour before ``moment`` at +01:00 (so that an
    answer must convert them), whole numbers as integers, other numbers 12.5 within the field's bounds."""
    if name in SAMPLE_TIMES:
        return (moment - timedelta(minutes=30)).astimezone(PLUS_ONE).isoformat()
    if name in TEXTS:
        return "4E47aB09"  # a meter's id: hex digits (the only texts query writes)
    metadata = Sample.model_fields[name].metadata
    low = next((float(rule.ge) for rule in metadata if isinstance(rule, Ge)), -1e9)  # type: ignore[arg-type]
    high = next((float(rule.le) for rule in metadata if isinstance(rule, Le)), 1e9)  # type: ignore[arg-type]
    value = min(max(2.0 if name in SAMPLE_WHOLES else 12.5, low), high)
    return int(value) if name in SAMPLE_WHOLES else value


TEXTS: Final = frozenset(
    name for name, info in Sample.model_fields.items() if str in (info.annotation, *get_args(info.annotation))
)
# The fields a scene writes itself (query_scenes.Meter.scene); the others are every other field of the
# contract, whatever it holds today: a new Sample field is tested here too.
SCENE_FIELDS: Final = ("ts", "power_w", "import_kwh", "export_kwh")
OTHERS: Final = {name: _value(name, TS) for name in Sample.model_fields if name not in SCENE_FIELDS}


@pytest.fixture(scope="module")
async def forms_device(loaded: str, ingest_client: httpx.AsyncClient) -> str:
    meter = Meter(DEVICE)
    meter.scene(TS, 1, const(1234.5), extra=lambda _t: OTHERS)
    await meter.upload(ingest_client)
    return DEVICE


def _get(api: ServiceProcess, path: str, **params: str) -> httpx.Response:
    r = httpx.get(api.base_url + path, params=params, headers=ALL, timeout=30)
    assert r.status_code == 200, r.text
    return r


def _is_float(value: object) -> bool:
    return type(value) is float


def _check_reading(reading: dict[str, Any], extra: tuple[str, ...]) -> None:
    """Every Sample field, in contract order, then ``extra``; times as instants equal to what was
    uploaded; whole numbers integers, the other numbers floats."""
    assert list(reading) == [*Sample.model_fields, *extra]
    for name in Sample.model_fields:
        value = reading[name]
        if name in SAMPLE_TIMES:
            assert INSTANT.fullmatch(value), (name, value)
        elif name in SAMPLE_WHOLES:
            assert type(value) is int, (name, value)
        elif name in TEXTS:
            assert value == "4E47aB09", (name, value)
        else:
            assert _is_float(value), (name, value)
    assert reading["ts"] == "2026-04-02T10:00:00Z"
    uploaded_gas_ts = datetime.fromisoformat(str(OTHERS["gas_ts"]))  # 10:30:00+01:00
    assert reading["gas_ts"] == instant(uploaded_gas_ts) == "2026-04-02T09:30:00Z"
    assert reading["tariff"] == 2


def _head(body: bytes) -> bytes:
    """A realtime answer without its age (computed at answer time)."""
    head, separator, _age = body.rpartition(b',"age_s":')
    assert separator
    return head


def _ingest_today(reading: dict[str, object]) -> dict[str, object]:
    """The layout ingest wrote before issue 12: ts with six fraction digits, the other times in the
    meter's offset, every number as the contract's type (tariff 2.0)."""
    return {
        "device_id": DEVICE,
        **{k: float(v) if isinstance(v, int) else v for k, v in reading.items()},
        "ts": TS.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def _timeform(reading: dict[str, object]) -> dict[str, object]:
    """Times as timeform writes them and whole numbers as integers, floats that are whole as integers."""
    out: dict[str, object] = {"device_id": DEVICE}
    for name, value in reading.items():
        if name in SAMPLE_TIMES:
            out[name] = instant(datetime.fromisoformat(str(value)))
        elif isinstance(value, float) and value.is_integer():
            out[name] = int(value)
        else:
            out[name] = value
    return out


async def test_realtime_reads_the_same_from_postgresql_and_from_any_redis_layout(
    api: ServiceProcess, redis_client: Redis, forms_device: str
) -> None:
    await redis_client.delete(LATEST)
    from_postgres = _get(api, f"/v1/devices/{DEVICE}/realtime").content
    reading = json.loads(from_postgres)
    _check_reading(reading, ("device_id", "age_s"))
    assert (reading["power_w"], reading["import_kwh"], reading["export_kwh"]) == (1234.5, 1000.0, 0.0)
    uploaded = {"ts": TS.isoformat(), "power_w": 1234.5, "import_kwh": 1000.0, "export_kwh": 0.0, **OTHERS}
    try:
        for layout in (_ingest_today(uploaded), _timeform(uploaded)):
            await redis_client.set(LATEST, json.dumps(layout))
            from_redis = _get(api, f"/v1/devices/{DEVICE}/realtime").content
            assert _head(from_redis) == _head(from_postgres), layout
    finally:
        await redis_client.delete(LATEST)
    assert b'"tariff":2,' in from_postgres
    assert b'"import_kwh":1000.0,' in from_postgres


def test_devices_write_instants_and_whole_protocol_versions(api: ServiceProcess, forms_device: str) -> None:
    r = _get(api, "/v1/devices")
    for device in r.json():
        assert INSTANT.fullmatch(device["first_seen"]), device
        assert INSTANT.fullmatch(device["last_seen"]), device
        if device["meter"] is not None and device["meter"]["protocol_version"] is not None:
            assert type(device["meter"]["protocol_version"]) is int, device
    mine = next(device for device in r.json() if device["device_id"] == DEVICE)
    assert (mine["first_seen"], mine["last_seen"]) == ("2026-04-02T10:00:00Z", "2026-04-02T10:00:00Z")
    assert b'"protocol_version":50}' in r.content


def test_raw_exports_write_every_sample_field_as_realtime_does(
    api: ServiceProcess, forms_device: str
) -> None:
    window = {"start": "2026-04-02T09:00:00Z", "end": "2026-04-02T11:00:00Z"}
    ndjson = _get(api, f"/v1/devices/{DEVICE}/export", format="ndjson", **window)
    (row,) = [json.loads(line) for line in ndjson.text.splitlines()]
    _check_reading(row, ("flag",))
    assert row["flag"] is None
    text = _get(api, f"/v1/devices/{DEVICE}/export", **window).text
    header, line = text.splitlines()
    assert header.split(",") == [*Sample.model_fields, "flag"]
    cells = dict(zip(header.split(","), next(csv.reader(io.StringIO(line))), strict=True))
    for name in Sample.model_fields:
        # The CSV cell is the JSON text of the same value: "2", "1234.5", "2026-04-02T09:30:00Z".
        bare = name in SAMPLE_TIMES or name in TEXTS
        assert cells[name] == (row[name] if bare else json.dumps(row[name])), name
    assert cells["tariff"] == "2"
    assert cells["flag"] == ""


def _check_point(point: dict[str, Any], bound: re.Pattern[str]) -> None:
    assert bound.fullmatch(point["start"]), point
    assert bound.fullmatch(point["end"]), point
    assert type(point["samples"]) is int
    for name in ("power_avg_w", "power_min_w", "power_max_w", "import_kwh", "export_kwh"):
        assert point[name] is None or _is_float(point[name]), (name, point)


@pytest.mark.parametrize(
    ("tz", "offsets"), [("Europe/Brussels", r"\+01:00|\+02:00"), ("UTC", "Z"), ("Asia/Kolkata", r"\+05:30")]
)
def test_series_boundaries_are_in_the_asked_zone(api: ServiceProcess, tz: str, offsets: str) -> None:
    body = _get(
        api,
        "/v1/devices/q-dst/series",
        start="2026-03-28T22:00:00Z",
        end="2026-03-29T23:00:00Z",
        bucket="1h",
        tz=tz,
    ).json()
    bound = boundary(offsets)
    assert bound.fullmatch(body["start"])
    assert bound.fullmatch(body["end"])
    for point in body["points"]:
        _check_point(point, bound)
    assert sum(point["samples"] for point in body["points"]) > 0


def test_capacity_starts_are_boundaries_in_the_asked_zone(api: ServiceProcess) -> None:
    body = _get(api, "/v1/devices/q-cap/capacity", month="2026-02", tz="Asia/Kolkata").json()
    kolkata = boundary(r"\+05:30")
    assert kolkata.fullmatch(body["peak_start"])
    assert body["peak_start"] == "2026-02-10T22:30:00+05:30"  # 17:00Z, the 4 kW quarter
    for quarter in body["top_quarters"]:
        assert kolkata.fullmatch(quarter["start"]), quarter
        assert _is_float(quarter["kw"]), quarter
    for name in ("peak_kw", "meter_peak_kw", "rolling_12m_avg_kw", "billable_kw", "cost_eur_per_year"):
        assert _is_float(body[name]), name


@pytest.mark.parametrize(("bucket", "offsets"), [("1d", r"\+01:00|\+02:00"), ("1h", "Z"), ("15m", "Z")])
def test_bucketed_exports_write_boundaries_of_their_grid(
    api: ServiceProcess, bucket: str, offsets: str
) -> None:
    """Days are cut in the asked zone (Brussels here); hours and quarters on the UTC grid."""
    window = {"start": "2026-03-28T23:00:00Z", "end": "2026-03-29T22:00:00Z", "bucket": bucket}
    ndjson = _get(api, "/v1/devices/q-dst/export", format="ndjson", **window)
    rows = [json.loads(line) for line in ndjson.text.splitlines()]
    assert len(rows) == {"1d": 1, "1h": 23, "15m": 92}[bucket]  # the spring DST day: 23 hours
    for row in rows:
        _check_point(row, boundary(offsets))
    text = _get(api, "/v1/devices/q-dst/export", **window).text.splitlines()
    for line, row in zip(text[1:], rows, strict=True):
        cells = line.split(",")
        assert cells[:3] == [row["start"], row["end"], str(row["samples"])]
        assert cells[3] == ("" if row["power_avg_w"] is None else json.dumps(row["power_avg_w"]))
