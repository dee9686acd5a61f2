"""The edges' reports (SampleBatch ``edge``) against real ``p1-ingest serve`` and ``p1-query serve``
processes with two workers each: a report is stored with its batch and shows on ingest's ``/metrics``
(``p1_edge_report_*{device_id}``, whichever worker answers) and in ``/v1/devices``; only devices of the
token table ever get series, and a device whose token is removed from DEVICE_TOKENS_FILE loses them;
hostile reports are refused 422 (or their unknown fields ignored), never a 500."""

import asyncio
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from p1_contracts.timerange import INSTANT_RE
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port, wait_until
from p1_servicekit.testing_files import write_by_rename

DEADLINE_S = 15  # token files are polled once a second per worker
AGREEING = 8  # scrapes on new connections that must agree (they spread over both workers)
WRITE = {"er-home": "tokEdgeHome-1a", "er-gone": "tokEdgeGone-2b", "er-hostile": "tokEdgeHostile-4d"}
READ_TOKEN = "tokEdgeRead-3c"
_ts = itertools.count()
T0 = datetime(2026, 6, 1, tzinfo=UTC)
REPORT: dict[str, Any] = {
    "spool_depth": 42,
    "spool_oldest_age_s": 12.5,
    "quarantined": 3,
    "spool_dropped": 7,
    "meter_errors": 5,
    "version": "0.1.0+pi",
    "uptime_s": 3600.25,
}


def batch(device: str, edge: object = None, **top: object) -> dict[str, Any]:
    n = next(_ts)
    sample = {"ts": (T0 + timedelta(seconds=n)).isoformat(), "power_w": 1.0, "import_kwh": 1 + n / 1e4}
    body: dict[str, Any] = {"device_id": device, "samples": [{**sample, "export_kwh": 0.0}], **top}
    if edge is not None:
        body["edge"] = edge
    return body


def post(base: str, device: str, body: object, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or WRITE[device]}", "Content-Type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(base + "/v1/samples", content=content, headers=headers, timeout=30)


def series(base: str, name: str) -> dict[str, float]:
    """device_id → value of ``name`` on one scrape."""
    text = httpx.get(base + "/metrics", timeout=10).text
    found = re.findall(rf'^{name}{{device_id="([^"]+)"}} (\S+)$', text, re.M)
    return {device: float(value) for device, value in found}


def everywhere(base: str, name: str, want: dict[str, float]) -> bool:
    return all(series(base, name) == want for _ in range(AGREEING))


def serve(service: str, env: dict[str, str]) -> ServiceProcess:
    port = free_port()
    return ServiceProcess(
        [console_script(f"p1-{service}"), "serve", "--port", str(port), "--workers", "2"],
        {**env, "LOG_LEVEL": "INFO"},
        port,
    )


async def _stranger(database_url: str) -> None:
    """A device written once (its token since removed) with a report stored."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO devices (device_id, first_seen, last_seen, edge_reported_at, edge_spool_depth,
                   edge_spool_oldest_age_s, edge_quarantined, edge_spool_dropped, edge_meter_errors,
                   edge_version, edge_uptime_s)
               VALUES ('er-stranger', $1, $1, $1, 99, 1, 0, 0, 0, '0.0.9', 1)""",
            T0,
        )
    finally:
        await conn.close()


def tokens_text(*devices: str) -> str:
    return "".join(f"{WRITE[d]}:{d}\n" for d in devices)


def test_reports_reach_metrics_and_devices_only_for_the_token_table(
    database_url: str, tmp_path: Path, stopped: list[ServiceProcess]
) -> None:
    tokens = tmp_path / "device_tokens"
    tokens.write_text(tokens_text("er-home", "er-gone"))
    ingest = serve(
        "ingest", {"DATABASE_URL": database_url, "DEVICE_TOKENS": "", "DEVICE_TOKENS_FILE": str(tokens)}
    )
    stopped.append(ingest.start())
    query = serve("query", {"DATABASE_URL": database_url, "READ_TOKENS": f"{READ_TOKEN}:*"})
    stopped.append(query.start())
    base = ingest.base_url

    # A device that was written once (its token since removed) and has a report stored: outside the
    # token table, it never gets a series.
    asyncio.run(_stranger(database_url))
    assert series(base, "p1_edge_report_spool_depth") == {}  # no report of a token-table device yet

    # An old edge (no report) is stored as before; then reports arrive.
    assert post(base, "er-home", batch("er-home")).status_code == 200
    assert post(base, "er-home", batch("er-home", REPORT)).status_code == 200
    assert post(base, "er-gone", batch("er-gone", {**REPORT, "spool_depth": 1})).status_code == 200
    # A device that is in no token table cannot post, and never gets a series.
    refused = post(base, "er-home", batch("er-nobody", REPORT), token="tokNobody-9z")
    assert refused.status_code == 401

    both = {"er-home": 42.0, "er-gone": 1.0}
    assert everywhere(base, "p1_edge_report_spool_depth", both)
    assert series(base, "p1_edge_report_meter_errors_total") == {"er-home": 5.0, "er-gone": 5.0}
    assert series(base, "p1_edge_report_spool_oldest_age_seconds")["er-home"] == 12.5
    assert series(base, "p1_edge_report_quarantined_samples")["er-home"] == 3
    assert series(base, "p1_edge_report_spool_dropped_samples_total")["er-home"] == 7
    assert series(base, "p1_edge_report_uptime_seconds")["er-home"] == 3600.25
    text = httpx.get(base + "/metrics", timeout=10).text
    assert 'p1_edge_report_info{device_id="er-home",version="0.1.0+pi"} 1.0' in text
    assert "er-stranger" not in text
    assert "er-nobody" not in text

    # /v1/devices: the report as sent, whole numbers as integers, reported_at an instant.
    devices = httpx.get(
        query.base_url + "/v1/devices", headers={"Authorization": f"Bearer {READ_TOKEN}"}
    ).json()
    by_id = {d["device_id"]: d for d in devices}
    home = by_id["er-home"]["edge"]
    reported_at = home.pop("reported_at")
    assert INSTANT_RE.fullmatch(reported_at), reported_at
    assert home == REPORT
    assert isinstance(home["spool_depth"], int)
    assert by_id["er-stranger"]["edge"]["spool_depth"] == 99  # query shows what is stored, by read scope
    # A batch without a report keeps the last one (an edge downgraded, or a replay from an old spool).
    assert post(base, "er-home", batch("er-home")).status_code == 200
    assert series(base, "p1_edge_report_spool_depth")["er-home"] == 42.0

    # The token of er-gone is removed from the file: its series disappear, er-home's stay.
    write_by_rename(tokens, tokens_text("er-home"))
    wait_until(
        lambda: everywhere(base, "p1_edge_report_spool_depth", {"er-home": 42.0}),
        DEADLINE_S,
        "er-gone's series to disappear from every worker",
    )
    reports = [
        line
        for line in httpx.get(base + "/metrics", timeout=10).text.splitlines()
        if "p1_edge_report" in line
    ]
    assert not [line for line in reports if "er-gone" in line]


HOSTILE: list[tuple[str, object, int, tuple[object, ...] | None]] = [
    ("negative depth", {**REPORT, "spool_depth": -1}, 422, ("body", "edge", "spool_depth")),
    ("fractional depth", {**REPORT, "spool_depth": 1.5}, 422, ("body", "edge", "spool_depth")),
    ("depth beyond bound", {**REPORT, "spool_depth": 10**10}, 422, ("body", "edge", "spool_depth")),
    ("age as string", {**REPORT, "spool_oldest_age_s": "12"}, 422, ("body", "edge", "spool_oldest_age_s")),
    ("errors as bool", {**REPORT, "meter_errors": True}, 422, ("body", "edge", "meter_errors")),
    ("version of 1 MB", {**REPORT, "version": "v" * 1_000_000}, 422, ("body", "edge", "version")),
    ("version with a label breaker", {**REPORT, "version": '1"} 1\nx{a="'}, 422, ("body", "edge", "version")),
    (
        "field missing",
        {k: v for k, v in REPORT.items() if k != "uptime_s"},
        422,
        ("body", "edge", "uptime_s"),
    ),
    ("a list", [REPORT], 422, ("body", "edge")),
    ("a huge string", "x" * 1_000_000, 422, ("body", "edge")),
    ("extra fields", {**REPORT, "cpu_temp_c": 51.2, "nested": {"deep": [1, 2]}}, 200, None),
]


@pytest.mark.parametrize(("name", "edge", "status", "loc"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_reports_are_refused_with_the_field_named_never_a_500(
    name: str, edge: object, status: int, loc: tuple[object, ...] | None, ingest_one: ServiceProcess
) -> None:
    r = post(ingest_one.base_url, "er-hostile", batch("er-hostile", edge))
    assert r.status_code == status, (name, r.text[:500])
    if loc is not None:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [tuple(e["loc"]) for e in r.json()["errors"]] == [loc], r.text[:500]
    # Nothing of a refused batch is stored: the last good report stays, no extra field reaches metrics.
    assert series(ingest_one.base_url, "p1_edge_report_spool_depth") == {"er-hostile": 42.0}
    assert "cpu_temp" not in httpx.get(ingest_one.base_url + "/metrics", timeout=10).text


def test_a_duplicate_key_in_a_report_is_refused(ingest_one: ServiceProcess) -> None:
    body = json.dumps(batch("er-hostile", REPORT))
    body = body.replace('"spool_depth": 42', '"spool_depth": 0, "spool_depth": 42')
    r = post(ingest_one.base_url, "er-hostile", body.encode())
    assert r.status_code == 422, r.text[:500]
    assert r.json()["errors"][0]["type"] == "duplicate_key"


@pytest.fixture(scope="module")
def ingest_one(database_url: str) -> Iterator[ServiceProcess]:
    """One ingest for the hostile cases, with a good report of er-hostile stored first."""
    proc = serve("ingest", {"DATABASE_URL": database_url, "DEVICE_TOKENS": tokens_text("er-hostile").strip()})
    proc.start()
    try:
        assert post(proc.base_url, "er-hostile", batch("er-hostile", REPORT)).status_code == 200
        yield proc
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()
