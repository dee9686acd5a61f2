"""Issue 11 §2: a counter that goes down is not a new meter, and no sequence of readings, in any arrival
order, books more energy than the connection's largest power allows (MAX_POWER_W, 43,470 W by default).
Over HTTP as an edge sends them (batches of 30 in order), answered by the query service.

Each device runs at a steady 600 W with a reading a minute from 2026-03-10 09:00Z for two hours: 0.01 kWh
a minute, 0.15 a quarter, 0.6 an hour, a demand of 0.6 kW in every quarter. The rules and their proofs:
services/ingest/NOTES.md, "Counter integrity"; the Hypothesis property over arbitrary histories and
arrival orders: services/ingest/tests/test_integrity_property.py."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hostile_kit import WRITE_TOKENS, Meter, Stack, batch, get, post, rows, still_works

from p1_contracts.timeform import instant

START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
MINUTES = 121
HOUR = {"start": "2026-03-10T09:00:00Z", "end": "2026-03-10T11:00:00Z"}


def steady(import_kwh: float, count: int = MINUTES, start: datetime = START) -> list[dict[str, Any]]:
    return [
        {
            "ts": instant(start + timedelta(minutes=k)),
            "power_w": 600.0,
            "import_kwh": round(import_kwh + 0.01 * k, 6),
            "export_kwh": 0.0,
        }
        for k in range(count)
    ]


def upload(stack: Stack, device: str, readings: list[dict[str, Any]], size: int = 30) -> None:
    for i in range(0, len(readings), size):
        r = post(stack, batch(device, readings[i : i + size]), WRITE_TOKENS[device])
        assert r.status_code == 200, r.text


def imports(stack: Stack, device: str, bucket: str) -> list[float | None]:
    r = get(stack, f"/v1/devices/{device}/series", {**HOUR, "bucket": bucket, "tz": "Europe/Brussels"})
    assert r.status_code == 200, r.text
    return [None if p["import_kwh"] is None else round(p["import_kwh"], 6) for p in r.json()["points"]]


def peak_kw(stack: Stack, device: str) -> float:
    r = get(stack, f"/v1/devices/{device}/capacity", {"month": "2026-03"})
    assert r.status_code == 200, r.text
    return float(r.json()["peak_kw"])


def flagged(stack: Stack, device: str) -> dict[str, str]:
    """ts → flag of the flagged readings, from the raw export."""
    r = get(stack, f"/v1/devices/{device}/export", {**HOUR, "format": "ndjson"})
    assert r.status_code == 200, r.text
    return {row["ts"]: row["flag"] for row in map(json.loads, r.text.splitlines()) if row["flag"]}


def epochs(stack: Stack, device: str) -> list[str]:
    found = rows(stack, "SELECT reason FROM counter_epochs WHERE device_id = $1 ORDER BY epoch", device)
    return [r["reason"] for r in found]


def keeps_working(stack: Stack, device: str, import_kwh: float) -> None:
    still_works(stack, Meter(device, import_kwh=import_kwh))


@pytest.mark.parametrize(
    ("device", "base", "bad"),
    [
        ("h-zero", 13779.0, 0.0),  # a single import_kwh 0 booked 13,779 kWh in a minute (≈ €565k a year)
        ("h-down", 1000.0, 1000.69),  # 0.001 kWh below the reading before it
        ("h-33", 95.0, 33.0),  # Home Assistant's 95 → 33 → 95
    ],
)
def test_one_reading_that_goes_down_books_nothing_and_opens_no_epoch(
    stack: Stack, device: str, base: float, bad: float
) -> None:
    readings = steady(base)
    readings[70]["import_kwh"] = bad if device != "h-down" else round(readings[69]["import_kwh"] - 0.001, 6)
    upload(stack, device, readings)
    assert imports(stack, device, "15m") == [0.15] * 8
    assert imports(stack, device, "1h") == [0.6, 0.6]
    assert peak_kw(stack, device) == 0.6
    assert flagged(stack, device) == {readings[70]["ts"]: "glitch"}
    assert epochs(stack, device) == ["first"]
    keeps_working(stack, device, readings[-1]["import_kwh"])


def test_counters_alternating_in_one_request_open_no_epoch(stack: Stack) -> None:
    """1000 ↔ 1000.5 kWh every second for ten minutes in one request (an hour of it made 7,551 epochs):
    every 1000.5 is a glitch but the last (undecided: nothing after it), 0 kWh, no new epoch."""
    device = "h-alternate"
    base = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    readings = [
        {
            "ts": instant(base + timedelta(seconds=k)),
            "power_w": 0.0,
            "import_kwh": 1000.5 if k % 2 else 1000.0,
            "export_kwh": 0.0,
        }
        for k in range(600)
    ]
    r = post(stack, batch(device, readings), WRITE_TOKENS[device])
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 600, "duplicates": 0}
    assert epochs(stack, device) == ["first"]
    marks = flagged(stack, device)
    assert sum(1 for f in marks.values() if f == "glitch") == 299
    assert marks[readings[-1]["ts"]] == "suspect"
    ten = {"start": "2026-03-10T09:00:00Z", "end": "2026-03-10T09:10:00Z", "bucket": "1h", "tz": "UTC"}
    answer = get(stack, f"/v1/devices/{device}/series", ten)
    assert [p["import_kwh"] for p in answer.json()["points"]] == [0.0]
    keeps_working(stack, device, 1000.0)


def test_a_late_spike_books_nothing(stack: Stack) -> None:
    """A reading of 10⁶ kWh sent late into an hour already stored (once a 3.97 × 10⁹ kW peak): judged
    against its stored neighbours like any other, a glitch; a good late reading beside it is stored."""
    device = "h-late"
    readings = steady(500.0)
    upload(stack, device, readings)
    spike = {"ts": "2026-03-10T09:30:30Z", "power_w": 600.0, "import_kwh": 1e6, "export_kwh": 0.0}
    fine = {"ts": "2026-03-10T09:40:30Z", "power_w": 600.0, "import_kwh": 500.405, "export_kwh": 0.0}
    r = post(stack, batch(device, [spike, fine]), WRITE_TOKENS[device])
    assert r.json() == {"accepted": 2, "duplicates": 0}
    assert imports(stack, device, "15m") == [0.15] * 8
    assert peak_kw(stack, device) == 0.6
    assert flagged(stack, device) == {spike["ts"]: "glitch"}
    assert epochs(stack, device) == ["first"]
    keeps_working(stack, device, readings[-1]["import_kwh"])


def test_a_jump_faster_than_the_connection_allows_is_never_booked(stack: Stack) -> None:
    """At 10:00 the counter is 100 kWh higher (6,000 kW for a minute, > 43.47 kW) and counts on from
    there: a new counter (epoch 2, from its first reading, once it held for 5 minutes), and the jump
    itself is counted nowhere — the quarter before it misses its last minute (0.14), the peak stays
    0.6 kW. Unchecked, it was 100 kWh in one quarter: a 400 kW peak."""
    device = "h-jump"
    readings = steady(2000.0, 60) + steady(2100.6, 61, START + timedelta(minutes=60))
    upload(stack, device, readings)
    assert imports(stack, device, "15m") == [0.15, 0.15, 0.15, 0.14, 0.15, 0.15, 0.15, 0.15]
    assert imports(stack, device, "1h") == [0.59, 0.6]
    assert peak_kw(stack, device) == 0.6
    assert flagged(stack, device) == {}
    assert epochs(stack, device) == ["first", "counter_reset"]
    keeps_working(stack, device, readings[-1]["import_kwh"])
