"""The simulator, read through the edge's own meter clients over real HTTP and HTTPS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sim_testkit import TZ, running

from p1_edge.meter.client import MeterClient
from p1_edge.meter.detect import connect
from p1_edge.meter.errors import MeterApiDisabled, MeterBadResponse, MeterUnauthorized, MeterUnreachable
from p1_edge.meter.pair import pair
from p1_edge.simulator.profiles import PROFILES
from p1_edge.simulator.server import Simulator
from p1_servicekit.testing import console_script, eventually, free_port


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def sim_v1() -> AsyncIterator[Simulator]:
    async with running(api="v1", profile="home") as sim:
        yield sim


@pytest.fixture
async def sim_v2() -> AsyncIterator[Simulator]:
    async with running(api="v2", profile="ev", token="sim-token") as sim:
        yield sim


SIM_TOKEN = "sim-token"


async def v2_client(sim: Simulator, token: str = SIM_TOKEN) -> MeterClient:
    client, _ = await connect(
        sim.host_port, "v2", TZ, token=token, timeout_s=3, ca_file=str(sim.ca_file), insecure=False
    )
    return client


async def test_v1_over_http(sim_v1: Simulator) -> None:
    client, device = await connect(
        sim_v1.host_port, None, TZ, token=None, timeout_s=3, ca_file=None, insecure=False
    )
    try:
        assert client.api == "v1"
        assert device.serial == "3c39e7aabbcc"
        first = await client.reading(now())
        sim_v1.model.step_seconds(600)
        second = await client.reading(now() + timedelta(seconds=600))
        assert (
            second.sample.import_kwh + second.sample.export_kwh
            > first.sample.import_kwh + first.sample.export_kwh
        )
        assert first.sample.gas_m3 is not None
        assert first.sample.water_m3 is not None
        assert first.sample.power_l3_w is not None  # 3-phase profile
        assert first.meter is not None
        assert first.meter.protocol_version == 50
    finally:
        await client.aclose()


async def test_v2_https_with_ca_hostname_rule_and_token(sim_v2: Simulator) -> None:
    client = await v2_client(sim_v2)
    try:
        reading = await client.reading(now())
        # the v2 reading carries the meter's own (local) time
        assert abs((reading.sample.ts - now()).total_seconds()) < 5
        assert reading.sample.ts.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
        assert reading.sample.power_l2_w is not None
    finally:
        await client.aclose()


async def test_v2_without_a_token_is_refused_at_once_with_the_pairing_hint(sim_v2: Simulator) -> None:
    # A real v2 device answers GET /api with 401 without a token (python-homewizard-energy detects v2 by
    # that very 401), so the edge cannot learn anything before it is paired.
    with pytest.raises(MeterUnauthorized) as info:
        await connect(
            sim_v2.host_port, None, TZ, token=None, timeout_s=3, ca_file=str(sim_v2.ca_file), insecure=False
        )
    assert "p1-edge pair" in info.value.hint
    client, device = await connect(
        sim_v2.host_port, None, TZ, token=SIM_TOKEN, timeout_s=3, ca_file=str(sim_v2.ca_file), insecure=False
    )
    try:
        assert (client.api, device.api_version) == ("v2", "2.0.0")
    finally:
        await client.aclose()


async def test_v2_certificate_must_name_the_device(sim_v2: Simulator) -> None:
    client = MeterClient(
        sim_v2.host_port, "v2", TZ, token="sim-token", timeout_s=3, ca_file=str(sim_v2.ca_file)
    )
    try:
        device = await client.device()
        impostor = type(device)(
            device.product_type, "000000000000", device.firmware_version, device.api_version
        )
        await client.pin_identity(impostor)
        with pytest.raises(MeterUnreachable, match=r"(?i)certificate|hostname|mismatch"):
            await client.reading(now())
    finally:
        await client.aclose()


async def test_v2_untrusted_without_its_ca_unless_insecure(sim_v2: Simulator) -> None:
    with pytest.raises(MeterUnreachable, match=r"(?i)certificate"):
        await connect(
            sim_v2.host_port, "v2", TZ, token="sim-token", timeout_s=3, ca_file=None, insecure=False
        )
    client, _ = await connect(
        sim_v2.host_port, "v2", TZ, token="sim-token", timeout_s=3, ca_file=None, insecure=True
    )
    try:
        assert (await client.reading(now())).sample.power_w is not None
    finally:
        await client.aclose()


async def test_bad_token_is_unauthorized_with_a_hint(sim_v2: Simulator) -> None:
    with pytest.raises(MeterUnauthorized) as info:
        await v2_client(sim_v2, token="wrong")
    assert "P1_TOKEN" in info.value.hint


async def test_faults(sim_v1: Simulator) -> None:
    client = MeterClient(sim_v1.host_port, "v1", TZ, timeout_s=0.5)
    try:
        sim_v1.faults.api_disabled = True
        with pytest.raises(MeterApiDisabled) as disabled:
            await client.reading(now())
        assert "Local API" in disabled.value.hint
        sim_v1.faults.api_disabled = False
        sim_v1.faults.malformed = True
        with pytest.raises(MeterBadResponse, match="malformed JSON"):
            await client.reading(now())
        sim_v1.faults.malformed = False
        sim_v1.faults.timeout = True
        with pytest.raises(MeterUnreachable, match="timed out"):
            await client.reading(now())
        sim_v1.faults.timeout = False
        assert (await client.reading(now())).sample.power_w is not None
    finally:
        await client.aclose()


async def test_counter_reset_changes_meter_and_counters_via_control_route(sim_v1: Simulator) -> None:
    client = MeterClient(sim_v1.host_port, "v1", TZ)
    try:
        before = await client.reading(now())
        async with httpx.AsyncClient(base_url=f"http://{sim_v1.host_port}") as http:
            answer = await http.post("/_sim/replace-meter")
            assert answer.status_code == 200
            faults = await http.post("/_sim/faults", json={"malformed": True})
            assert faults.json()["malformed"] is True
            await http.post("/_sim/faults", json={"malformed": False})
        after = await client.reading(now())
        assert before.meter is not None
        assert after.meter is not None
        assert after.meter.serial != before.meter.serial
        assert after.sample.import_kwh < before.sample.import_kwh
    finally:
        await client.aclose()


async def test_pairing_waits_for_the_button(sim_v2: Simulator) -> None:
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if len(lines) == 2:
            sim_v2.press_button()

    token = await pair(
        sim_v2.host_port,
        "test",
        wait_s=10,
        ca_file=str(sim_v2.ca_file),
        insecure=False,
        say=say,
        interval_s=0.05,
    )
    assert token == "sim-token"
    assert lines[0].startswith("Press the button on the P1 meter now (")


async def test_pairing_times_out(sim_v2: Simulator) -> None:
    with pytest.raises(TimeoutError):
        await pair(
            sim_v2.host_port,
            "t",
            wait_s=0.3,
            ca_file=str(sim_v2.ca_file),
            insecure=False,
            say=lambda _: None,
            interval_s=0.05,
        )


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_every_profile_maps_to_the_contract(api: str, profile: str) -> None:
    sim = Simulator(api=api, profile=profile, token="t")  # type: ignore[arg-type]
    await sim.start()
    try:
        client, _ = await connect(
            sim.host_port,
            "v1" if api == "v1" else "v2",
            TZ,
            token="t",
            timeout_s=3,
            ca_file=str(sim.ca_file) if sim.ca_file else None,
            insecure=False,
        )
        try:
            sample = (await client.reading(now())).sample
            assert sample.power_l1_w is not None
            assert (sample.power_l2_w is not None) == PROFILES[profile].three_phase
            assert (sample.gas_m3 is not None) == PROFILES[profile].has_gas
        finally:
            await client.aclose()
    finally:
        await sim.close()


async def test_simulate_cli_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "sim.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        console_script("p1-edge"),
        "simulate",
        "--port",
        str(port),
        "--api",
        "v2",
        "--ca-out",
        str(tmp_path / "ca.pem"),
        "--token",
        "cli-token",
        stdout=log,
        stderr=log,
    )
    try:

        async def answers() -> bool:
            if not (tmp_path / "ca.pem").exists():  # written once the server listens
                return False
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            await writer.wait_closed()
            return True

        await eventually(
            answers, 20, lambda: "the simulator to listen:\n" + (tmp_path / "sim.log").read_text()
        )
        client = await v2_client_at(f"127.0.0.1:{port}", tmp_path / "ca.pem")
        try:
            assert (await client.reading(now())).sample.power_w is not None
        finally:
            await client.aclose()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        log.close()
    assert "P1_TOKEN=cli-token" in (tmp_path / "sim.log").read_text()


async def v2_client_at(host: str, ca: Path) -> MeterClient:
    client, _ = await connect(host, "v2", TZ, token="cli-token", timeout_s=3, ca_file=str(ca), insecure=False)
    return client
