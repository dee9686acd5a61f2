"""Capacity's months are the asked zone's local months, cut in Python and handed to PostgreSQL as UTC
boundaries (capacity_sql): no statement names the zone. q-bulk reads 500 W every second from
2026-07-01T00:00:00Z for 16 h 40 min, which in New York (UTC−4) is 2026-06-30 20:00 local: its first
four hours are June's, the rest July's — a quarter of 0.125 kWh, a demand of 0.5 kW, in each.

A process without Redis computes every month of a window in one statement (with Redis, final months
come from the cache, one statement each), so the statement must rank each local month's quarters apart.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from query_scenes import BULK_DEVICE, query_env

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

ALL = {"Authorization": "Bearer tok-all"}


def _capacity(api: ServiceProcess, month: str, tz: str) -> dict[str, Any]:
    r = httpx.get(
        f"{api.base_url}/v1/devices/{BULK_DEVICE}/capacity",
        params={"month": month, "tz": tz},
        headers=ALL,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
def uncached(bulk: str) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)], query_env(bulk, None), port
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def test_the_months_are_local_months_of_the_asked_zone(uncached: ServiceProcess) -> None:
    june = _capacity(uncached, "2026-06", "America/New_York")
    july = _capacity(uncached, "2026-07", "America/New_York")  # June and July in one statement
    assert june["months"] == [{"month": "2026-06", "peak_kw": 0.5, "counted_kw": 2.5, "source": "measured"}]
    assert july["months"] == [
        *june["months"],
        {"month": "2026-07", "peak_kw": 0.5, "counted_kw": 2.5, "source": "measured"},
    ]
    # Each month's five highest quarters lie inside it, in local time: June's in its last four hours.
    assert len(june["top_quarters"]) == len(july["top_quarters"]) == 5
    for quarter in june["top_quarters"]:
        assert "2026-06-30T20:00:00-04:00" <= quarter["start"] <= "2026-06-30T23:45:00-04:00"
        assert quarter["kw"] == pytest.approx(0.5, abs=1e-6)
    for quarter in july["top_quarters"]:
        assert quarter["start"] >= "2026-07-01T00:00:00-04:00"
    # In UTC all of it is July's.
    assert _capacity(uncached, "2026-06", "UTC")["months"] == []
