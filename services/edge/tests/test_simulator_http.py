"""The simulator's HTTP behaviour, route by route, as HomeWizard documents it for the HWE-P1: statuses,
error bodies, headers, the v2 token rules and pairing, and the control routes' validation."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from sim_testkit import TOKEN, http, local, running

from p1_edge.simulator.server import Simulator
from p1_servicekit.testing import console_script

START = local(2026, 3, 10, 18, 7, 30)
V2 = {"X-Api-Version": "2.0.0"}


@pytest.fixture
async def v2() -> AsyncIterator[Simulator]:
    async with running(api="v2", profile="home", start=START) as sim:
        yield sim


@pytest.fixture
async def v1() -> AsyncIterator[Simulator]:
    async with running(api="v1", profile="home", start=START) as sim:
        yield sim


async def test_v2_needs_the_bearer_token_everywhere_but_pairing(v2: Simulator) -> None:
    async with http(v2, token=None) as client:
        for path in ("/api", "/api/measurement", "/api/telegram", "/api/system", "/api/user"):
            answer = await client.get(path)
            assert (answer.status_code, answer.json()) == (401, {"error": "user:unauthorized"}), path
            assert answer.headers["x-api-version"] == "2.0.0"
        wrong = await client.get("/api", headers={"Authorization": "Bearer " + "0" * 32})
        assert wrong.status_code == 401
        basic = await client.get("/api", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        lower = await client.get("/api", headers={"Authorization": f"bearer {TOKEN}"})
        assert lower.status_code == 200  # the scheme's case does not matter (RFC 7235)


async def test_v2_api_version_header(v2: Simulator) -> None:
    async with http(v2) as client:
        for asked, status in (("2", 200), ("1", 400), ("3", 400)):
            answer = await client.get("/api/measurement", headers={"X-Api-Version": asked})
            assert answer.status_code == status, asked
            assert answer.headers["x-api-version"] == "2.0.0"
        assert answer.json() == {"error": "request:api-version-not-supported"}


async def test_v2_unknown_routes_and_methods(v2: Simulator) -> None:
    async with http(v2) as client:
        for path in ("/api/v1/data", "/api/batteries", "/api/identify"):  # not on an API 2.0.0 P1
            assert (await client.get(path)).status_code == 404, path
        wrong = await client.delete("/api/measurement")
        assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET")


async def test_v2_system_settings_all_or_nothing(v2: Simulator) -> None:
    async with http(v2) as client:
        changed = await client.put(
            "/api/system", json={"cloud_enabled": False, "status_led_brightness_pct": 50}
        )
        assert changed.status_code == 200
        assert (changed.json()["cloud_enabled"], changed.json()["status_led_brightness_pct"]) == (False, 50)
        cases = [
            (
                {"cloud_enabled": True, "status_led_brightness_pct": 123},
                "json:parameter-invalid-type:status_led_brightness_pct",
            ),
            ({"api_v1_enabled": "false"}, "json:parameter-invalid-type:api_v1_enabled"),
            ({"status_led_brightness_pct": True}, "json:parameter-invalid-type:status_led_brightness_pct"),
            ({"wifi_ssid": "x"}, "json:no-parameters-recognized"),  # read-only
            ({}, "json:no-parameters-recognized"),
        ]
        for body, code in cases:
            answer = await client.put("/api/system", json=body)
            assert (answer.status_code, answer.json()) == (400, {"error": code}), body
        garbage = await client.put("/api/system", content=b"{not json")
        assert (garbage.status_code, garbage.json()) == (400, {"error": "request:invalid-json"})
        system = (await client.get("/api/system")).json()
    assert (system["cloud_enabled"], system["status_led_brightness_pct"]) == (False, 50)  # nothing changed


async def test_v2_identify_and_reboot_answer_204(v2: Simulator) -> None:
    async with http(v2) as client:
        await client.post("/_sim/advance", json={"seconds": 100})
        assert (await client.get("/api/system")).json()["uptime_s"] == 100
        for action in ("identify", "reboot"):
            answer = await client.put(f"/api/system/{action}")
            assert (answer.status_code, answer.content) == (204, b"")
            assert "content-type" not in answer.headers
        assert (await client.get("/api/system")).json()["uptime_s"] == 0
        assert (await client.get("/_sim/state")).json()["identified"] == 1


async def test_v2_pairing_and_users(v2: Simulator) -> None:
    async with http(v2, token=None) as anonymous:
        for name, code in (("ha", "user:invalid-prefix"), ("local/" + "x" * 41, "user:name-too-long")):
            refused = await anonymous.post("/api/user", json={"name": name})
            assert (refused.status_code, refused.json()) == (400, {"error": code}), name
        for name, code in (("local/é", "user:name-invalid"), ("", "user:name-empty")):
            assert (await anonymous.post("/api/user", json={"name": name})).json() == {"error": code}
        assert (await anonymous.post("/api/user", json={})).json() == {"error": "json:parameter-missing:name"}
        early = await anonymous.post("/api/user", json={"name": "local/ha"})
        assert (early.status_code, early.json()) == (403, {"error": "user:creation-not-enabled"})
        await anonymous.post("/_sim/button")
        first = (await anonymous.post("/api/user", json={"name": "local/ha"})).json()
        assert first == {"token": TOKEN, "name": "local/ha"}  # the configured token, to the first pairing
        again = (await anonymous.post("/api/user", json={"name": "local/ha"})).json()
    assert re.fullmatch(r"[0-9A-F]{32}", again["token"])
    async with http(v2, token=TOKEN) as old:
        assert (await old.get("/api")).status_code == 401  # a name used again: the old token is revoked
    async with http(v2, token=again["token"]) as client:
        assert (await client.get("/api/user")).json() == [{"name": "local/ha", "current": True}]
        missing = await client.request("DELETE", "/api/user", json={"name": "local/nobody"})
        assert (missing.status_code, missing.json()) == (404, {"error": "user:not-found"})
        gone = await client.request("DELETE", "/api/user")  # no name: the caller itself
        assert gone.status_code == 204
        assert (await client.get("/api")).status_code == 401


async def test_what_python_homewizard_energys_v2_client_sends(v2: Simulator) -> None:
    """The requests of the library's v2 client (10.x; it needs Python 3.12, see the report): the path,
    method and status of each of its calls, ``combined()`` included (batteries: 404 → not supported)."""
    async with http(v2) as client:
        calls = {
            "device": await client.get("/api"),
            "measurement": await client.get("/api/measurement"),
            "telegram": await client.get("/api/telegram"),
            "system": await client.get("/api/system"),
            "system(cloud_enabled=False)": await client.put("/api/system", json={"cloud_enabled": False}),
            "batteries": await client.get("/api/batteries"),
            "identify": await client.put("/api/system/identify"),
            "reboot": await client.put("/api/system/reboot"),
        }
    statuses = {name: answer.status_code for name, answer in calls.items()}
    assert statuses == {
        "device": 200,
        "measurement": 200,
        "telegram": 200,
        "system": 200,
        "system(cloud_enabled=False)": 200,
        "batteries": 404,
        "identify": 204,
        "reboot": 204,
    }
    assert all(a.headers["x-api-version"] == "2.0.0" for a in calls.values())
    assert calls["telegram"].text.startswith("/SIM5\\")


async def test_v1_system_errors_and_routes(v1: Simulator) -> None:
    async with http(v1) as client:
        garbage = await client.put("/api/v1/system", content=b"[1,")
        assert (garbage.status_code, garbage.json()) == (
            400,
            {"error": {"id": 2, "description": "Body contains invalid json"}},
        )
        wrong = await client.put("/api/v1/system", json={"cloud_enabled": "no"})
        assert (wrong.status_code, wrong.json()["error"]["id"]) == (400, 7)
        assert (await client.get("/api/v1/system")).json() == {"cloud_enabled": True}
        assert (await client.get("/api/v1/state")).status_code == 404  # the Energy Socket's, not a P1's
        not_allowed = await client.post("/api/v1/data")
        assert (not_allowed.status_code, not_allowed.headers["allow"]) == (405, "GET")
        v1.appliance.api_v1_enabled = False  # as API v2's PUT /api/system {"api_v1_enabled": false} does
        disabled = await client.get("/api/v1/data")
    assert (disabled.status_code, disabled.json()) == (
        403,
        {"error": {"id": 202, "description": "API not enabled"}},
    )


async def test_grid_events_reach_json_and_telegram(v1: Simulator) -> None:
    async with http(v1) as client:
        for body in (
            {"event": "sag", "phase": 2},
            {"event": "swell", "phase": 3},
            {"event": "power_failure"},
            {"event": "long_power_failure", "duration_s": 600},
        ):
            assert (await client.post("/_sim/grid-event", json=body)).status_code == 200
        for bad in (
            {"event": "storm"},
            {"event": "sag", "phase": 4},
            {"event": "long_power_failure", "duration_s": -1},
        ):
            assert (await client.post("/_sim/grid-event", json=bad)).status_code == 400, bad
        data = (await client.get("/api/v1/data")).json()
        text = (await client.get("/api/v1/telegram")).text
    assert (data["voltage_sag_l2_count"], data["voltage_swell_l3_count"]) == (3, 2)
    assert (data["any_power_fail_count"], data["long_power_fail_count"]) == (8, 4)
    assert "1-0:99.97.0(2)(0-0:96.7.19)(260310180730W)(0000000600*s)(" in text  # newest first


async def test_control_routes_refuse_bad_input(v1: Simulator) -> None:
    async with http(v1) as client:
        for seconds in (0, -5, 86401, "10", True, None):
            answer = await client.post("/_sim/advance", json={"seconds": seconds})
            assert answer.status_code == 400, seconds
        assert (await client.post("/_sim/replace-meter", json={"meters": ["boiler"]})).status_code == 400
        assert (await client.post("/_sim/faults", content=b"[")).status_code == 400
        before = (await client.get("/api/v1/data")).json()
        gas_only = await client.post("/_sim/replace-meter", json={"meters": ["gas"]})
        assert gas_only.status_code == 200
        after = (await client.get("/api/v1/data")).json()
        moved = await client.post("/_sim/advance", json={"seconds": 60})
    assert after["unique_id"] == before["unique_id"]
    assert after["gas_unique_id"] != before["gas_unique_id"]
    assert after["total_gas_m3"] == 0
    assert moved.json()["local"] == "2026-03-10T18:08:30+01:00"


async def test_simulate_cli_refuses_impossible_meters() -> None:
    for args, says in (
        (["--dsmr", "4", "--country", "be"], "DSMR 4 is Dutch only"),
        (["--start", "2026-03-10T12:00:00"], "has no UTC offset"),
        (["--start", "2100-01-01T00:00:00+00:00"], "2000-01-01"),
        (["--speed", "-1"], "speed"),
        (
            ["--start", "2026-03-10T12:00:00+01:00", "--installed", "2026-03-11T00:00:00+01:00"],
            "installed after",
        ),
    ):
        proc = await asyncio.create_subprocess_exec(
            console_script("p1-edge"), "simulate", "--port", "0", *args, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 2, args
        assert says in err.decode(), err
