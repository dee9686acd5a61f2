"""Schemathesis from the repository's openapi.yaml against the running ingest and query services.

Every check runs (server errors, status codes, content types, headers, response schemas, negative data
rejection, missing headers, unsupported methods, …), with a fixed seed (hypothesis ``derandomize``) so CI is
repeatable, and **no value is steered**: start, end, tz, bucket, month and every reading are what the schema
generates. So the schema has to say exactly what the services take, and it does:

- Whatever the schema can state, it states, and the services check exactly that: ``tz`` is an enum of the
  pinned tzdata's zones (``p1_contracts.zones``); every instant has the pattern ``timerange.INSTANT`` (RFC
  3339 as Python reads it, years 2000–2099) besides ``format: date-time``; months, buckets, formats,
  lengths and the readings' bounds are the schema's own.
- What it cannot state depends on another value, the clock, stored data or the body's bytes: ``end`` after
  ``start``; at most 10,000 buckets (series) or 31 days / 100,000 buckets (export); a reading at most 5
  minutes ahead; an instant written on the range's first or last day whose offset takes it outside; a body
  over the size limit. Each operation lists these in
  ``x-semantic-rejections`` (status, the problem's ``errors[].type`` and the ``loc`` it names).

Schemathesis' own "positive data acceptance" check would call each of those a schema-valid request
rejected, so it is replaced by ``documented_rejections_only``, which is stricter, not looser: a rejection of
a schema-valid request passes only when (1) the operation documents that status, (2) every error of a 422
has a documented ``type`` at a documented ``loc``, and (3) the reason really holds for the request that was
sent, recomputed here from the request (``end`` ≤ ``start``; the instant outside ``p1_contracts.timerange``;
the range at least half of 10,000 nominal buckets long; the reading ahead of this clock; the body over the
limit). An undocumented rejection, a documented one at
another field, or a documented one whose reason does not hold all fail the run, so the list hides no
mismatch. ``duplicate_key`` is documented but can never be right here: generated JSON has no duplicate key.

Two substitutions stay. A generated device id that is *valid* becomes the one device the test's tokens may
use, which has data. A random valid id is answered 403 (ingest) or 404 (query) — correctly, and allowed —
but then no request would ever reach the validation and answers behind the token check; that is about
credentials and stored data, not about what the schema allows. Invalid ids (negative cases) are left alone.
Likewise a schema-valid token given to ``POST /v1/session`` becomes the test's read token (a random one is
answered 401, correctly, and the operation would never be seen to answer 204).

Unsteered, most generated ranges are refused for a documented reason, so each operation is also held to
have answered 2xx at least once (``outcomes``): a run that only ever exercised rejections would prove little.
Time is bounded by ``EXAMPLES`` per operation (plus the coverage phase's cases) and ``REQUEST_TIMEOUT_S``.
"""

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import is_unexpected_http_status_case, positive_data_acceptance

from p1_contracts import timerange
from p1_contracts.patterns import is_device_id
from p1_ingest.parse import MAX_FUTURE
from p1_ingest.peaks import in_month
from p1_query.buckets import MAX_POINTS
from p1_query.export import MAX_BUCKETS, RAW_MAX_DAYS
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
DEVICE, WRITE, READ = "contract-dev", "contract-write", "contract-read"
EXAMPLES = 80
REQUEST_TIMEOUT_S = 60.0
MAX_BODY_BYTES = 8 * 1024 * 1024
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
# Statuses schemathesis' positive data acceptance takes for a valid request (its defaults: credentials,
# stored data, rate limits; a 5xx is not_a_server_error's to judge).
ACCEPTED = frozenset({401, 403, 404, 409, 429})
NOMINAL = {
    "1m": timedelta(minutes=1),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "1mo": timedelta(days=28),
}
# The operations' answers to positive cases: (operation, "2xx" | status), for the reach check.
outcomes: Counter[tuple[str, str]] = Counter()


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


def _at(case: schemathesis.Case, loc: list[Any]) -> object:
    """The value of the request at a problem's ``loc`` (``query``/``path`` name, or a body path)."""
    where, *rest = loc
    node: Any = {"query": case.query, "path": case.path_parameters, "body": case.body}.get(where)
    for key in rest:
        if isinstance(node, dict) and isinstance(key, str):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return None
    return node


def _span(case: schemathesis.Case) -> timedelta | None:
    query = case.query or {}
    start, end = _instant(query.get("start")), _instant(query.get("end"))
    return None if start is None or end is None else end - start


def _large(case: schemathesis.Case, limit: int) -> bool:
    """At least half of ``limit`` nominal buckets long: loose on purpose (DST days, months), never exact."""
    span, bucket = _span(case), (case.query or {}).get("bucket", "raw")
    return span is not None and bucket in NOMINAL and span >= NOMINAL[bucket] * limit / 2


def _export_too_large(case: schemathesis.Case) -> bool:
    span = _span(case)
    if (case.query or {}).get("bucket", "raw") == "raw":
        return span is not None and span > timedelta(days=RAW_MAX_DAYS)
    return _large(case, MAX_BUCKETS)


def _ahead(value: object) -> bool:
    # The server refused ts > its now + MAX_FUTURE; its now is at most one request timeout before ours.
    ts = _instant(value)
    return ts is not None and ts > datetime.now(UTC) + MAX_FUTURE - timedelta(seconds=REQUEST_TIMEOUT_S)


def _outside(value: object) -> bool:
    instant = _instant(value)
    return instant is not None and not timerange.in_range(instant)


def _end_not_after_start(case: schemathesis.Case) -> bool:
    span = _span(case)
    return span is not None and span <= timedelta(0)


# Does the reason of a documented 422 error type hold for this request (and the value at its loc)?
HOLDS: dict[str, Callable[[schemathesis.Case, list[Any]], bool]] = {
    "end_not_after_start": lambda case, _loc: _end_not_after_start(case),
    "out_of_range": lambda case, loc: _outside(_at(case, loc)),
    "too_many_points": lambda case, _loc: _large(case, MAX_POINTS),
    "export_too_large": lambda case, _loc: _export_too_large(case),
    "ts_in_future": lambda case, loc: _ahead(_at(case, loc)),
    "duplicate_key": lambda _case, _loc: False,  # generated JSON never repeats a key
    "duplicate_month": lambda case, loc: _month_seen_before(case, loc),
    "peak_ts_not_in_month": lambda case, loc: _peak_outside_its_month(case, loc),
}


def _month_seen_before(case: schemathesis.Case, loc: list[Any]) -> bool:
    """[body, peaks, i, month]: a peak before index i names the same month."""
    month, index = _at(case, loc), loc[2] if len(loc) == 4 else None
    return isinstance(index, int) and any(
        _at(case, ["body", "peaks", j, "month"]) == month for j in range(index)
    )


def _peak_outside_its_month(case: schemathesis.Case, loc: list[Any]) -> bool:
    """[body, peaks, i, peak_ts]: the time, read in its own offset, is not in the peak's month."""
    peak_ts = _instant(_at(case, loc))
    month = _at(case, [*loc[:-1], "month"])
    return peak_ts is not None and isinstance(month, str) and not in_month(peak_ts, month)


def _body_bytes(case: schemathesis.Case) -> int:
    return len(json.dumps(case.body).encode()) if case.body is not None else 0


def _depth(node: object) -> int:
    if isinstance(node, dict):
        return 1 + max(map(_depth, node.values()), default=0)
    if isinstance(node, list):
        return 1 + max(map(_depth, node), default=0)
    return 0


# Does the reason of a documented status without errors hold?
HOLDS_STATUS: dict[int, Callable[[schemathesis.Case], bool]] = {
    413: lambda case: _body_bytes(case) > MAX_BODY_BYTES,
    400: lambda case: _depth(case.body) > 100,
}


def _loc_matches(pattern: list[Any], loc: list[Any]) -> bool:
    """``*`` stands for one element of ``loc``, ``**`` (last) for the rest."""
    if pattern and pattern[-1] == "**":
        return len(loc) >= len(pattern) - 1 and _loc_matches(pattern[:-1], loc[: len(pattern) - 1])
    return len(pattern) == len(loc) and all(p in ("*", v) for p, v in zip(pattern, loc, strict=True))


def _unexplained(case: schemathesis.Case, status: int, body: bytes) -> list[str]:
    """Why this rejection of a schema-valid request is not one the operation documents; empty if it is."""
    documented = case.operation.definition.raw.get("x-semantic-rejections", [])
    entries = [e for e in documented if e["status"] == status]
    if status != 422:
        holds = HOLDS_STATUS.get(status)
        ok = entries and holds is not None and holds(case)
        return [] if ok else [f"{status} is not a documented semantic rejection that holds here"]
    try:
        errors = json.loads(body)["errors"]
    except (ValueError, KeyError, TypeError):
        return ["a 422 without errors[]"]
    out = []
    for error in errors:
        kind, loc = error.get("type"), error.get("loc", [])
        matching = [e for e in entries if e.get("type") == kind and _loc_matches(e["loc"], loc)]
        if not matching:
            out.append(f"{kind} at {loc}: not in x-semantic-rejections")
        elif not HOLDS[kind](case, loc):
            out.append(f"{kind} at {loc}: documented, but its reason does not hold for this request")
    return out or ([] if errors else ["a 422 with an empty errors[]"])


@schemathesis.check
def documented_rejections_only(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """Positive data acceptance, with the operation's documented semantic rejections (module docstring)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or is_unexpected_http_status_case(case):
        return None
    status = response.status_code
    label = case.operation.label
    outcomes[(label, "2xx" if 200 <= status < 300 else str(status))] += 1
    if status < 400 or status >= 500 or status in ACCEPTED:
        return None
    problems = _unexplained(case, status, response.content)
    if problems:
        raise AssertionError(f"schema-valid request refused with {status}: " + "; ".join(problems))
    return None


@pytest.fixture(scope="module", autouse=True)
def every_operation_answered_2xx() -> Iterator[None]:
    """After the module: each operation that got positive cases answered 2xx at least once."""
    outcomes.clear()
    yield
    tested = {label for label, _ in outcomes}
    reached = {label for label, outcome in outcomes if outcome == "2xx"}
    assert tested <= reached, f"never 2xx: {sorted(tested - reached)}; outcomes {dict(outcomes)}"


@pytest.fixture(scope="module")
def ingest(database_url: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEVICE_TOKENS": f"{WRITE}:{DEVICE}",
        "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        # Validation is what is under test, not the rate limit (whose 429 would be taken, and say nothing).
        "RATE_LIMIT_PER_S": "10000",
        "RATE_LIMIT_BURST": "10000",
    }
    proc = ServiceProcess([console_script("p1-ingest"), "serve", "--port", str(port)], env, port).start()
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


def _to_our_device(holder: object, key: str) -> None:
    """A valid device id becomes the one the tokens may use (module docstring); an invalid one stays."""
    if isinstance(holder, dict) and isinstance(holder.get(key), str) and is_device_id(holder[key]):
        holder[key] = DEVICE


def _to_our_token(case: schemathesis.Case) -> None:
    """A schema-valid sign-in token becomes the read token (module docstring); anything else stays."""
    body = case.body
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    if isinstance(body, dict) and isinstance(body.get("token"), str) and 1 <= len(body["token"]) <= 1024:
        body["token"] = READ


def _call(case: schemathesis.Case, base_url: str, token: str | None) -> None:
    case.call_and_validate(
        base_url=base_url,
        headers=None if token is None else _auth_for(case, token),
        excluded_checks=[positive_data_acceptance],
        timeout=REQUEST_TIMEOUT_S,
    )


@SCHEMA.include(tag="ingest").exclude(tag="ops").parametrize()
@SETTINGS
def test_ingest_conforms(case: schemathesis.Case, ingest: str) -> None:
    _to_our_device(case.body, "device_id")
    _to_our_device(case.path_parameters, "device_id")
    _call(case, ingest, WRITE)


# The live stream never ends by itself: a generated call would wait for its timeout. Its own tests
# (services/query/tests/test_live.py) hold it to the contract.
@SCHEMA.include(tag="query").exclude(tag="ops").exclude(operation_id="streamLive").parametrize()
@SETTINGS
def test_query_conforms(case: schemathesis.Case, query: str) -> None:
    _to_our_device(case.path_parameters, "device_id")
    _to_our_token(case)
    _call(case, query, READ)


@SCHEMA.include(tag="ops").parametrize()
@settings(max_examples=5, derandomize=True, deadline=None)
def test_ops_routes_conform_on_both_services(case: schemathesis.Case, ingest: str, query: str) -> None:
    for base in (ingest, query):
        _call(case, base, None)


# ---- the check itself: it must refuse every rejection the contract does not explain -----------------------

SERIES = SCHEMA["/v1/devices/{device_id}/series"]["GET"]
SAMPLES = SCHEMA["/v1/samples"]["POST"]
DAY_AFTER = {"start": "2026-01-02T00:00:00Z", "end": "2026-01-03T00:00:00Z", "bucket": "1h"}
BACKWARDS = {**DAY_AFTER, "end": "2026-01-01T00:00:00Z"}


def _problem(*errors: tuple[str, list[Any]]) -> bytes:
    return json.dumps(
        {"status": 422, "errors": [{"type": t, "loc": loc, "msg": "…"} for t, loc in errors]}
    ).encode()


@pytest.mark.parametrize(
    ("query", "errors", "explained"),
    [
        (BACKWARDS, [("end_not_after_start", ["query", "end"])], True),
        (DAY_AFTER, [("end_not_after_start", ["query", "end"])], False),  # the reason does not hold
        (BACKWARDS, [("end_not_after_start", ["query", "start"])], False),  # not where it is documented
        (DAY_AFTER, [("datetime", ["query", "start"])], False),  # a schema rule: never for a valid request
        ({**DAY_AFTER, "start": "2000-01-01T00:30:00+01:00"}, [("out_of_range", ["query", "start"])], True),
        (DAY_AFTER, [("out_of_range", ["query", "start"])], False),
        (
            {**DAY_AFTER, "start": "2000-01-01T00:00:00Z", "bucket": "1m"},
            [("too_many_points", ["query", "bucket"])],
            True,
        ),
        ({**DAY_AFTER, "bucket": "1m"}, [("too_many_points", ["query", "bucket"])], False),
        (BACKWARDS, [("end_not_after_start", ["query", "end"]), ("enum", ["query", "tz"])], False),
        (BACKWARDS, [], False),
    ],
)
def test_the_check_takes_only_documented_rejections_whose_reason_holds(
    query: dict[str, str], errors: list[tuple[str, list[Any]]], explained: bool
) -> None:
    case = SERIES.Case(query=query, path_parameters={"device_id": DEVICE})
    assert (_unexplained(case, 422, _problem(*errors)) == []) == explained


def test_a_rejection_without_errors_is_explained_only_by_its_documented_reason() -> None:
    small = SAMPLES.Case(body={"device_id": DEVICE, "samples": []}, media_type="application/json")
    assert _unexplained(small, 413, b"{}") != []  # documented, but the body is small
    series = SERIES.Case(query=DAY_AFTER, path_parameters={"device_id": DEVICE})
    assert _unexplained(series, 413, b"{}") != []  # not documented for this operation
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    future = SAMPLES.Case(body={"samples": [{"ts": ahead}]}, media_type="application/json")
    assert _unexplained(future, 422, _problem(("ts_in_future", ["body", "samples", 0, "ts"]))) == []
    assert _unexplained(future, 422, _problem(("duplicate_key", ["body", "samples"]))) != []
