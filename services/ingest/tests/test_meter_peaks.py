"""``PUT /v1/devices/{device_id}/meter-peaks`` against a real ingest process and PostgreSQL: stored,
idempotent, the newer report of a month wins in any order, validated whole, and the device's token only."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

DEVICE = "mp-dev"
AUTH = {"Authorization": "Bearer mp-token", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def ingest(database_url: str) -> Iterator[ServiceProcess]:
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "DEVICE_TOKENS": f"mp-token:{DEVICE},other-token:mp-other",
        "LOG_LEVEL": "WARNING",
    }
    proc = ServiceProcess([console_script("p1-ingest"), "serve", "--port", str(port)], env, port).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def put(ingest: ServiceProcess, body: object, device: str = DEVICE, **headers: str) -> httpx.Response:
    return httpx.put(
        f"{ingest.base_url}/v1/devices/{device}/meter-peaks",
        content=body if isinstance(body, bytes) else json.dumps(body).encode(),
        headers={**AUTH, **headers},
        timeout=30,
    )


def peak(month: str, w: float, ts: str) -> dict[str, Any]:
    return {"month": month, "peak_w": w, "peak_ts": ts}


async def stored(url: str) -> list[tuple[str, float, datetime]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT month, peak_w, peak_ts FROM meter_peaks WHERE device_id = $1", DEVICE)
    finally:
        await conn.close()
    return sorted((r["month"], r["peak_w"], r["peak_ts"]) for r in rows)


async def test_peaks_are_stored_idempotently_and_the_newer_report_wins(
    ingest: ServiceProcess, database_url: str
) -> None:
    history = [
        peak("2026-01", 4200.0, "2026-01-12T18:15:00+01:00"),
        peak("2026-02", 3100.0, "2026-02-03T07:30:00+01:00"),
    ]
    r = put(ingest, {"peaks": history})
    assert (r.status_code, r.json()) == (200, {"stored": 2})
    assert put(ingest, {"peaks": history}).json() == {"stored": 2}  # a retry: the same state, the same answer
    # The running month's peak rises: the later report replaces it; the older one, replayed, changes nothing.
    later = peak("2026-02", 3500.0, "2026-02-20T19:00:00+01:00")
    assert put(ingest, {"peaks": [later]}).json() == {"stored": 1}
    assert put(ingest, {"peaks": [history[1]]}).json() == {"stored": 0}
    assert await stored(database_url) == [
        ("2026-01", 4200.0, datetime(2026, 1, 12, 17, 15, tzinfo=UTC)),
        ("2026-02", 3500.0, datetime(2026, 2, 20, 18, 0, tzinfo=UTC)),
    ]
    assert put(ingest, {"peaks": []}).json() == {"stored": 0}


@pytest.mark.parametrize(
    ("peaks", "loc", "kind"),
    [
        (
            [peak("2026-01", 1.0, "2026-02-01T00:15:00+01:00")],
            ["body", "peaks", 0, "peak_ts"],
            "peak_ts_not_in_month",
        ),
        (
            [peak("2026-01", 1.0, "2026-01-02T00:00:00Z"), peak("2026-01", 2.0, "2026-01-03T00:00:00Z")],
            ["body", "peaks", 1, "month"],
            "duplicate_month",
        ),
        (
            [peak("2026-13", 1.0, "2026-01-02T00:00:00Z")],
            ["body", "peaks", 0, "month"],
            "string_pattern_mismatch",
        ),
        (
            [peak("2026-01", -1.0, "2026-01-02T00:00:00Z")],
            ["body", "peaks", 0, "peak_w"],
            "greater_than_equal",
        ),
        ([peak("2026-01", 2e6, "2026-01-02T00:00:00Z")], ["body", "peaks", 0, "peak_w"], "less_than_equal"),
        (
            [peak("2026-01", 1.0, "2026-01-02 00:00:00Z")],
            ["body", "peaks", 0, "peak_ts"],
            "string_pattern_mismatch",
        ),
        (
            [peak("2000-01", 1.0, "2000-01-01T00:30:00+01:00")],
            ["body", "peaks", 0, "peak_ts"],
            "out_of_range",
        ),
    ],
)
def test_a_bad_peak_is_a_422_naming_it_and_nothing_is_stored(
    ingest: ServiceProcess, peaks: list[dict[str, Any]], loc: list[Any], kind: str
) -> None:
    r = put(ingest, {"peaks": [peak("2025-12", 9.0, "2025-12-01T10:00:00+01:00"), *peaks]})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    (error,) = r.json()["errors"]
    assert (error["loc"], error["type"]) == ([loc[0], loc[1], loc[2] + 1, loc[3]], kind)


async def test_a_refused_body_stores_nothing(ingest: ServiceProcess, database_url: str) -> None:
    before = await stored(database_url)
    ahead = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    r = put(
        ingest, {"peaks": [peak("2025-11", 9.0, "2025-11-01T10:00:00+01:00"), peak(ahead[:7], 1.0, ahead)]}
    )
    assert (r.status_code, r.json()["errors"][0]["type"]) == (422, "ts_in_future")
    assert await stored(database_url) == before


def test_only_the_devices_own_token_may_write_and_a_bad_id_or_body_is_refused(ingest: ServiceProcess) -> None:
    body = {"peaks": [peak("2026-01", 1.0, "2026-01-02T00:00:00Z")]}
    assert put(ingest, body, Authorization="Bearer nope").status_code == 401
    assert put(ingest, body, device="mp-other").status_code == 403
    r = put(ingest, body, device="bad%20id")
    assert (r.status_code, r.json()["errors"][0]["loc"]) == (422, ["path", "device_id"])
    assert put(ingest, b'{"peaks": [', device=DEVICE).status_code == 400
    one = b'"month": "2026-01", "peak_w": 1, "peak_ts": "2026-01-02T00:00:00Z"'
    dup = b'{"peaks": [{"month": "2026-01", ' + one + b"}]}"
    assert put(ingest, dup).json()["errors"][0]["type"] == "duplicate_key"
    assert put(ingest, body, **{"Content-Type": "text/plain"}).status_code == 415


async def test_a_months_last_quarter_is_stamped_with_the_next_months_first_instant(
    ingest: ServiceProcess, database_url: str
) -> None:
    """The meter stamps a peak with its quarter's end: March's 23:45 quarter ends 2026-04-01 00:00 local."""
    end_of_march = peak("2026-03", 5000.0, "2026-04-01T00:00:00+02:00")
    assert put(ingest, {"peaks": [end_of_march]}).json() == {"stored": 1}
    assert ("2026-03", 5000.0, datetime(2026, 3, 31, 22, tzinfo=UTC)) in await stored(database_url)
    r = put(ingest, {"peaks": [peak("2026-03", 5000.0, "2026-04-01T00:00:01+02:00")]})  # a second later
    assert r.json()["errors"][0]["type"] == "peak_ts_not_in_month"
