"""The capacity ledger over HTTP, with answers computed by hand: only completed quarters count (a spike at
a quarter's start does not pass for its demand), money rounded half-up to the cent, the price's
fallback and the operator's setting."""

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from query_scenes import Meter, query_env, steps, upload, utc

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
    assert before["months"] == [{"month": "2026-03", "peak_kw": 0.5, "counted_kw": 2.5}]
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
