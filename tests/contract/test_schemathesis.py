"""Schemathesis from the repository's openapi.yaml against the running ingest and query services.

All checks run (server errors, status codes, content types, headers, response schemas, negative data
rejection, positive data acceptance), with a fixed seed (hypothesis ``derandomize``) so CI is repeatable.

Two adjustments keep generated data meaningful rather than silencing checks:
- a generated device id that is *valid* is replaced by the id the token may use (ingest) or by a device
  with data (query). Random valid ids would otherwise be answered 403/404 — correctly, but then the
  positive path would never be exercised. Invalid ids (negative cases) are left alone.
- values the contract cannot constrain are steered when they are valid: a reading time moves into the
  last hour (not "more than 5 minutes ahead"), a time zone becomes a known IANA zone, and ``end`` follows
  ``start`` within the 10,000-bucket limit. Otherwise these semantic 422s would be misread by positive
  data acceptance. Each 422 is tested with its own message in the services' own tests.
"""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation

from p1_contracts import timerange
from p1_contracts.patterns import is_device_id
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
DEVICE, WRITE, READ = "contract-dev", "contract-write", "contract-read"
EXAMPLES = 80
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def _parses_as_aware_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).utcoffset() is not None
    except ValueError:
        return False


@pytest.fixture(scope="module")
def ingest(database_url: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(port)],
        {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "DEVICE_TOKENS": f"{WRITE}:{DEVICE}"},
        port,
    ).start()
    yield proc.base_url
    assert proc.stop() in CLEAN_EXITS, proc.logs()


@pytest.fixture(scope="module")
def query(database_url: str, redis_url: str, ingest: str) -> Iterator[str]:
    # Data for the device, through the real ingest path, so query answers 200 on the positive path.
    now = datetime.now(UTC).replace(microsecond=0)
    samples = [
        {
            "ts": (now - timedelta(minutes=90 - i)).isoformat(),
            "power_w": 500.0 + i,
            "import_kwh": 100 + i * 0.01,
            "export_kwh": 5.0,
        }
        for i in range(90)
    ]
    r = httpx.post(
        f"{ingest}/v1/samples",
        json={"device_id": DEVICE, "samples": samples},
        headers={"Authorization": f"Bearer {WRITE}"},
    )
    assert r.status_code == 200, r.text
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)],
        {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "READ_TOKENS": f"{READ}:{DEVICE}"},
        port,
    ).start()
    yield proc.base_url
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def _auth_for(case: schemathesis.Case, token: str) -> dict[str, str]:
    """The token, unless the case's headers were generated to be invalid (e.g. the required
    Authorization header left out on purpose): adding it would turn that negative case positive."""
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        return {}
    return {"Authorization": f"Bearer {token}"}


def _steer_ingest_body(body: Any) -> None:
    if not isinstance(body, dict):
        return
    if isinstance(body.get("device_id"), str) and is_device_id(body["device_id"]):
        body["device_id"] = DEVICE
    samples = body.get("samples")
    if isinstance(samples, list):
        recent = datetime.now(UTC) - timedelta(minutes=30)
        for i, sample in enumerate(samples):
            if isinstance(sample, dict) and _parses_as_aware_datetime(sample.get("ts")):
                sample["ts"] = (recent - timedelta(seconds=i)).isoformat()


@SCHEMA.include(tag="ingest").exclude(tag="ops").parametrize()
@SETTINGS
def test_ingest_conforms(case: schemathesis.Case, ingest: str) -> None:
    _steer_ingest_body(case.body)
    case.call_and_validate(base_url=ingest, headers=_auth_for(case, WRITE))


ZONES = ("Europe/Brussels", "UTC", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe")
TZ_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")


def _steer_query(case: schemathesis.Case) -> None:
    params = case.path_parameters or {}
    if isinstance(params.get("device_id"), str) and is_device_id(params["device_id"]):
        params["device_id"] = DEVICE
    query = case.query if isinstance(case.query, dict) else {}
    tz = query.get("tz")
    if isinstance(tz, str) and TZ_NAME.match(tz) and len(tz) <= 64:
        query["tz"] = ZONES[len(tz) % len(ZONES)]
    start, end = query.get("start"), query.get("end")
    if _parses_as_aware_datetime(start) and _parses_as_aware_datetime(end):
        begin = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        # The supported range (p1_contracts.timerange), a year inside at either end for any offset.
        if not timerange.FIRST_YEAR < begin.year < timerange.LAST_YEAR:
            begin = begin.replace(year=2026, month=1, day=min(begin.day, 28))
        query["start"] = begin.isoformat()
        query["end"] = (begin + timedelta(hours=6)).isoformat()


@SCHEMA.include(tag="query").exclude(tag="ops").parametrize()
@SETTINGS
def test_query_conforms(case: schemathesis.Case, query: str) -> None:
    _steer_query(case)
    case.call_and_validate(base_url=query, headers=_auth_for(case, READ))


@SCHEMA.include(tag="ops").parametrize()
@settings(max_examples=5, derandomize=True, deadline=None)
def test_ops_routes_conform_on_both_services(case: schemathesis.Case, ingest: str, query: str) -> None:
    for base in (ingest, query):
        case.call_and_validate(base_url=base)
