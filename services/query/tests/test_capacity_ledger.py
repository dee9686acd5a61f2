"""The capacity ledger over HTTP, with answers computed by hand: only completed quarters count (a spike at
a quarter's start does not pass for its demand), money rounded half-up to the cent, the price's
fallback and the operator's setting."""

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from query_scenes import Meter, const, query_env, seed_token, steps, upload, utc

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

ALL = {"Authorization": "Bearer tok-all"}


def _capacity(api: ServiceProcess, device: str, month: str) -> dict[str, Any]:
    r = httpx.get(
        f"{api.base_url}/v1/devices/{device}/capacity", params={"month": month}, headers=ALL, timeout=30
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_spike_at_a_quarters_start_does_not_inflate_the_peak(
    api: ServiceProcess, ingest_client: httpx.AsyncClient
) -> None:
    """Readings every 10 s from 2026-03-02 10:00Z (11:00 Brussels): 500 W, then 9000 W for the 30 s from
    10:30:00, then 500 W again. Uploaded up to 10:30:30, the quarter 10:30 is running: its readings so
    far average (3 × 9000 + 500) / 4 = 6875 W, which the old rule took as its demand (6.875 kW). Only
    the completed quarters count: 10:00 and 10:15 each import 500 W × 900 s = 0.125 kWh → 0.5 kW.
    Once a reading of 10:45 arrives, 10:30 is complete: 9000 W × 30 s + 500 W × 870 s = 705,000 J
    = 0.195833 kWh → × 4 = 0.783 kW, the month's peak."""
    meter = Meter("q-spike")
    t0 = utc(2026, 3, 2, 10)
    power = steps((t0, 500), (utc(2026, 3, 2, 10, 30), 9000), (utc(2026, 3, 2, 10, 30, 30), 500))
    meter.scene(t0, 277, power, step_s=10)  # 10:00:00 … 10:46:00
    ((serial, readings),) = meter.batches
    device = {"serial": serial, "model": "TEST", "protocol_version": 50}
    running = 184  # 10:00:00 … 10:30:30
    await upload(ingest_client, "q-spike", readings[:running], device)
    before = _capacity(api, "q-spike", "2026-03")
    assert before["peak_kw"] == 0.5
    assert [q["kw"] for q in before["top_quarters"]] == [0.5, 0.5]
    assert before["months"] == [{"month": "2026-03", "peak_kw": 0.5, "counted_kw": 2.5, "source": "measured"}]
    await upload(ingest_client, "q-spike", readings[running:], device)
    after = _capacity(api, "q-spike", "2026-03")
    assert (after["peak_kw"], after["peak_start"]) == (0.783, "2026-03-02T11:30:00+01:00")
    assert [q["kw"] for q in after["top_quarters"]] == [0.783, 0.5, 0.5]  # 10:45 is running now


@pytest.fixture(scope="module")
def fallback_priced(loaded: str) -> Iterator[ServiceProcess]:
    """A query process with a grid operator whose table has no figure and no price set."""
    env = query_env(loaded, None)
    del env["CAPACITY_PRICE_EUR_PER_KW_YEAR"]
    env["GRID_OPERATOR"] = "fluvius-imewo"
    port = free_port()
    proc = ServiceProcess([console_script("p1-query"), "serve", "--port", str(port)], env, port).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def test_money_is_rounded_half_up_to_the_cent(fallback_priced: ServiceProcess) -> None:
    """No data in 2023-05's 12 months: the 2.5 kW floor. No figure for Fluvius Imewo in 2023 and no
    override: the fallback 53.25 €/kW/year. 2.5 × 53.25 = 133.125 € → half-up 133.13 (not 133.12)."""
    body = _capacity(fallback_priced, "q-cap", "2023-05")
    assert (body["billable_kw"], body["price_eur_per_kw_year"]) == (2.5, 53.25)
    assert body["cost_eur_per_year"] == 133.13


def test_an_unknown_grid_operator_is_a_configuration_error(loaded: str) -> None:
    env = {**query_env(loaded, None), "GRID_OPERATOR": "fluvius-nowhere"}
    argv = [console_script("p1-query"), "serve", "--port", str(free_port())]
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, timeout=30, check=False)
    assert done.returncode == 2
    assert b"GRID_OPERATOR" in done.stderr + done.stdout


# The meter's history as its telegram holds it (OBIS 0-0:98.1.0, W), each with its quarter's end in
# Brussels time, and the running month (1-0:1.6.0). 2025-11 is 13 months before 2026-11: outside the window.
WEEK_PEAKS = [
    ("2025-11", 9000.0, "2025-11-20T18:15:00+01:00"),
    ("2025-12", 4000.0, "2025-12-10T18:15:00+01:00"),
    ("2026-01", 5200.0, "2026-01-14T19:00:00+01:00"),
    ("2026-02", 3000.0, "2026-02-02T07:45:00+01:00"),
    ("2026-03", 2000.0, "2026-03-03T08:00:00+01:00"),
    ("2026-04", 2600.0, "2026-04-21T18:30:00+02:00"),
    ("2026-05", 1800.0, "2026-05-05T12:15:00+02:00"),
    ("2026-06", 2200.0, "2026-06-16T13:00:00+02:00"),
    ("2026-07", 3400.0, "2026-07-08T17:45:00+02:00"),
    ("2026-08", 2400.0, "2026-08-19T18:00:00+02:00"),
    ("2026-09", 4100.0, "2026-09-29T19:15:00+02:00"),
    ("2026-10", 4700.0, "2026-10-13T18:45:00+02:00"),
    ("2026-11", 3300.0, "2026-11-05T18:00:00+01:00"),
]


async def test_a_first_week_install_shows_twelve_months_from_the_meters_history(
    api: ServiceProcess, ingest_client: httpx.AsyncClient
) -> None:
    """Installed on 2026-11-24 at 10:00 Brussels (09:00Z): two hours of 1500 W, a reading a minute, so
    our November has quarters of 1.5 kW but only from the 24th: it does not cover the month, and the
    meter's own peak of November (3.3 kW) counts. The other 11 months are the meter's alone.

    Counted (kW, each at least 2.5): 2025-12 4.0, 2026-01 5.2, 02 3.0, 03 2.5 (2.0), 04 2.6, 05 2.5 (1.8),
    06 2.5 (2.2), 07 3.4, 08 2.5 (2.4), 09 4.1, 10 4.7, 11 3.3 → sum 40.3 / 12 = 3.35833 → 3.358 kW;
    cost 3.358 × 50 = 167.90 €."""
    meter = Meter("q-week")
    meter.scene(utc(2026, 11, 24, 9), 121, const(1500))
    await meter.upload(ingest_client)
    peaks = [{"month": m, "peak_w": w, "peak_ts": ts} for m, w, ts in WEEK_PEAKS]
    r = await ingest_client.put(
        "/v1/devices/q-week/meter-peaks",
        content=json.dumps({"peaks": peaks}),
        headers={"Authorization": f"Bearer {seed_token('q-week')}", "Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()) == (200, {"stored": 13})
    body = _capacity(api, "q-week", "2026-11")
    assert [(m["month"], m["peak_kw"], m["counted_kw"], m["source"]) for m in body["months"]] == [
        ("2025-12", 4.0, 4.0, "meter"),
        ("2026-01", 5.2, 5.2, "meter"),
        ("2026-02", 3.0, 3.0, "meter"),
        ("2026-03", 2.0, 2.5, "meter"),
        ("2026-04", 2.6, 2.6, "meter"),
        ("2026-05", 1.8, 2.5, "meter"),
        ("2026-06", 2.2, 2.5, "meter"),
        ("2026-07", 3.4, 3.4, "meter"),
        ("2026-08", 2.4, 2.5, "meter"),
        ("2026-09", 4.1, 4.1, "meter"),
        ("2026-10", 4.7, 4.7, "meter"),
        ("2026-11", 3.3, 3.3, "meter"),
    ]
    assert (body["rolling_12m_avg_kw"], body["billable_kw"], body["cost_eur_per_year"]) == (
        3.358,
        3.358,
        167.9,
    )
    assert body["peak_kw"] == 1.5  # the asked month's own quarters: what we measured since the install


async def test_a_peak_reported_later_replaces_a_cached_final_ledger(
    api: ServiceProcess, ingest_client: httpx.AsyncClient
) -> None:
    """(After the install above.) The ledger of 2026-10 is final (over before q-week's newest reading):
    cached for a day under the device's version, of which the count of peak reports is part, so the next
    answer shows it.
    2025-11 … 2026-10 counted: 9.0 + 4.0 + 5.2 + 3.0 + 2.5 + 2.6 + 2.5 + 2.5 + 3.4 + 2.5 + 4.1 + 4.7
    = 46.0 / 12 = 3.8333 → 3.833. A later, higher report of October (6.1 kW): 46.0 − 4.7 + 6.1 = 47.4
    / 12 = 3.95."""
    before = _capacity(api, "q-week", "2026-10")
    assert before["rolling_12m_avg_kw"] == 3.833
    assert _capacity(api, "q-week", "2026-10") == before  # from the cache now
    later = {"month": "2026-10", "peak_w": 6100.0, "peak_ts": "2026-10-28T19:00:00+01:00"}
    r = await ingest_client.put(
        "/v1/devices/q-week/meter-peaks",
        content=json.dumps({"peaks": [later]}),
        headers={"Authorization": f"Bearer {seed_token('q-week')}", "Content-Type": "application/json"},
    )
    assert r.json() == {"stored": 1}
    after = _capacity(api, "q-week", "2026-10")
    assert (after["months"][-1]["peak_kw"], after["rolling_12m_avg_kw"]) == (6.1, 3.95)
