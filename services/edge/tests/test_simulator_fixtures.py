"""Every answer of the simulator against python-homewizard-energy's HWE-P1 fixtures, key by key and type
by type (fixtures: ``fixtures/`` and ``fixtures/homewizard/``, sources in their READMEs).

Types are compared as JSON types, with one allowance: a measured quantity (a key ending in a unit, or
an external meter's ``value``) is a *number* whether its digits have a fraction or not (the fixtures
write ``"energy_export_kwh": 0`` and ``"average_power_15m_w": 123.000`` alike); counts, tariffs and
versions must be integers. A key the fixture lacks must be one HomeWizard documents for the HWE-P1.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sim_testkit import FIXTURES, fixture, http, local, running

from p1_edge.simulator.server import Simulator

START = local(2026, 3, 10, 18, 7, 30)
UNITS = ("_kwh", "_w", "_v", "_a", "_hz", "_m3")
PHASED = ("power_l{}_w", "voltage_l{}_v", "current_l{}_a", "voltage_sag_l{}_count", "voltage_swell_l{}_count")
# HomeWizard's API documentation, HWE-P1 tables (docs/v1/measurement.mdx, docs/v2/measurement.mdx)
V2_DOCUMENTED = {
    *[
        "unique_id",
        "protocol_version",
        "meter_model",
        "timestamp",
        "tariff",
        "power_w",
        "voltage_v",
        "current_a",
        "frequency_hz",
    ],
    *(f"energy_{d}{t}_kwh" for d in ("import", "export") for t in ("", "_t1", "_t2", "_t3", "_t4")),
    *(p.format(n) for p in PHASED for n in (1, 2, 3)),
    *["any_power_fail_count", "long_power_fail_count", "average_power_15m_w", "monthly_power_peak_w"],
    "monthly_power_peak_timestamp",
    "external",
}
V1_DOCUMENTED = {
    *[
        "unique_id",
        "smr_version",
        "meter_model",
        "wifi_ssid",
        "wifi_strength",
        "active_tariff",
        "active_power_w",
    ],
    *(f"total_power_{d}{t}_kwh" for d in ("import", "export") for t in ("", "_t1", "_t2", "_t3", "_t4")),
    *(
        ("active_" if p.startswith(("power", "voltage_l", "current")) else "") + p.format(n)
        for p in PHASED
        for n in (1, 2, 3)
    ),
    *["active_frequency_hz", "any_power_fail_count", "long_power_fail_count", "active_power_average_w"],
    *["montly_power_peak_w", "montly_power_peak_timestamp", "total_gas_m3", "gas_timestamp", "gas_unique_id"],
    "external",
}
V2_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def kind(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float) and (key.endswith(UNITS) or key == "value"):
        return "number"
    return {int: "integer", float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def assert_shaped_like(ours: dict[str, Any], theirs: dict[str, Any], documented: set[str]) -> None:
    missing = set(theirs) - set(ours)
    assert not missing, f"keys the fixture has and we lack: {sorted(missing)}"
    undocumented = set(ours) - set(theirs) - documented
    assert not undocumented, f"keys HomeWizard does not document: {sorted(undocumented)}"
    for key in theirs:
        assert kind(key, ours[key]) == kind(key, theirs[key]), f"{key}: {ours[key]!r} vs {theirs[key]!r}"


def assert_externals_shaped_like(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    fixture_types = {entry["type"]: entry for entry in theirs}
    assert ours, "no external meters"
    for entry in ours:
        assert_shaped_like(entry, fixture_types[entry["type"]], set())


@pytest.fixture
async def v2_home() -> AsyncIterator[Simulator]:
    async with running(api="v2", profile="home", start=START) as sim:
        yield sim


async def test_v2_measurement_3_phase_with_gas_and_water(v2_home: Simulator) -> None:
    async with http(v2_home) as client:
        ours = (await client.get("/api/measurement")).json()
    theirs = fixture("v2_measurement_3_phase_gas_water.json")
    assert_shaped_like(ours, theirs, V2_DOCUMENTED)
    assert_externals_shaped_like(ours["external"], theirs["external"])
    assert "wifi_ssid" not in ours
    assert "wifi_strength" not in ours  # v2 reports Wi-Fi in /api/system
    for key in ("timestamp", "monthly_power_peak_timestamp"):
        assert V2_TIME.fullmatch(ours[key]), ours[key]
    assert all(V2_TIME.fullmatch(e["timestamp"]) for e in ours["external"])


async def test_v2_measurement_1_phase_without_gas() -> None:
    async with (
        running(api="v2", profile="single-phase", country="nl", start=START) as sim,
        http(sim) as client,
    ):
        ours = (await client.get("/api/measurement")).json()
    assert_shaped_like(ours, fixture("v2_measurement_1_phase_no_gas.json"), V2_DOCUMENTED)
    assert not [k for k in ours if "l2" in k or "l3" in k or k == "external"]


async def test_v2_system_device_and_telegram(v2_home: Simulator) -> None:
    async with http(v2_home) as client:
        system = (await client.get("/api/system")).json()
        device = (await client.get("/api")).json()
    theirs = fixture("v2_api_system.json")
    assert_shaped_like(system, theirs, set())
    assert set(system) == set(theirs)
    assert device.keys() == fixture("v2_api_device.json").keys()
    assert (device["product_type"], device["api_version"]) == ("HWE-P1", "2.0.0")


async def test_v1_answers() -> None:
    async with running(api="v1", profile="home", start=START) as sim, http(sim) as client:
        data = (await client.get("/api/v1/data")).json()
        system = (await client.get("/api/v1/system")).json()
        identify = (await client.put("/api/v1/identify")).json()
        device = (await client.get("/api")).json()
    theirs = fixture("v1_data_all_fields.json")
    assert_shaped_like(data, theirs, V1_DOCUMENTED)
    assert_externals_shaped_like(data["external"], theirs["external"])
    for key in ("montly_power_peak_timestamp", "gas_timestamp"):
        assert len(str(data[key])) == 12
    assert system.keys() == fixture("homewizard/v1_system.json").keys()
    assert identify == fixture("homewizard/v1_identify.json")
    assert device.keys() == fixture("v1_api_device.json").keys()
    assert device["api_version"] == "v1"


def shape(line: str) -> str:
    """A telegram line with its values blurred: hex ids → H, digit runs → 9, the season flag → X."""
    line = re.sub(r"\((?:[0-9A-F]{2}){8,}\)", "(H)", line)
    return re.sub(r"9[SW]\)", "9X)", re.sub(r"\d+", "9", line))


async def test_dutch_telegram_has_the_fixtures_lines_in_its_order() -> None:
    """A Dutch DSMR 5 meter with a gas meter (profile ev: 3-phase, gas, no water) sends exactly the
    lines of the fixture, in its order, with the same value formats."""
    raw = (FIXTURES / "homewizard" / "telegram.txt").read_text()
    # The fixture's header was mangled on its way through the docs: "\\" doubled, and the "1-" of
    # "1-3:0.2.8" glued to the header line. Undone here so the lines can be compared.
    raw = raw.replace("\\\\", "\\").replace("-10111-\n\n3:0.2.8", "-1011\n\n1-3:0.2.8")
    theirs = raw.strip().split("\n")
    async with running(api="v2", profile="ev", country="nl", start=START) as sim, http(sim) as client:
        answer = await client.get("/api/telegram")
    assert answer.headers["content-type"] == "text/plain"
    ours = answer.text.strip().split("\r\n")
    assert [shape(x) for x in ours[2:-1]] == [shape(x) for x in theirs[2:-1]]
    for line in (ours[0], theirs[0]):
        assert re.fullmatch(r"/[A-Z]{3}5\\[\w-]+", line), line
    assert re.fullmatch(r"![0-9A-F]{4}", ours[-1])
