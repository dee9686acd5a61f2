"""A real client library against the simulator: python-homewizard-energy, the one Home Assistant uses.

6.3.0 is the newest release that installs on Python 3.11 (7.0 and later need 3.12). It speaks API v1
only and has no ``measurement()``/``telegram()``/``combined()`` methods yet: ``data()`` reads
``/api/v1/data`` (what later releases call ``measurement()``), its generic ``request()`` reads the
telegram (text when the answer is not JSON, as later releases' ``telegram()`` does), and
``combined()`` of later releases is ``device()``, ``measurement()``, ``system()``, ``state()`` gathered
at once with "not supported" meaning None — reproduced below with 6.3.0's methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime

import pytest
from homewizard_energy import HomeWizardEnergy
from homewizard_energy.errors import UnsupportedError
from homewizard_energy.models import Data, Device, System
from sim_testkit import TZ, http, local, running

from p1_edge.meter.mapping import V1_FIELDS, build_sample, map_values
from p1_edge.simulator.server import Simulator

START = local(2026, 3, 10, 18, 7, 30)  # a weekday evening: day tariff, cooking on phase 2


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with running(api="v1", profile="home", start=START) as simulator:
        yield simulator


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[HomeWizardEnergy]:
    async with HomeWizardEnergy(sim.host_port, timeout=5) as client:
        yield client


async def test_device(api: HomeWizardEnergy, sim: Simulator) -> None:
    device = await api.device()
    assert (device.product_type, device.api_version, device.serial) == ("HWE-P1", "v1", sim.serial)


async def test_data_is_the_meter_of_this_instant(api: HomeWizardEnergy, sim: Simulator) -> None:
    data = await api.data()
    r = sim.model.reading()  # the clock is frozen: the telegram the client read
    assert data.unique_meter_id == "SIM-E-00000000"  # the library decodes the hex equipment id
    assert (data.smr_version, data.active_tariff) == (50, 1)
    assert data.total_energy_import_kwh == r.import_total_wh / 1000
    assert data.total_energy_import_t1_kwh == r.import_wh[0] / 1000
    assert data.total_energy_export_t2_kwh == r.export_wh[1] / 1000
    assert data.active_power_w == r.power_w == sum(p.power_w for p in r.phases)
    assert data.active_power_l2_w == r.phases[1].power_w
    assert data.active_voltage_l3_v == r.phases[2].voltage_dv / 10  # type: ignore[operator]
    assert data.active_frequency_hz is not None
    assert (data.any_power_fail_count, data.long_power_fail_count) == (6, 3)
    assert (data.voltage_sag_l1_count, data.voltage_swell_l3_count) == (3, 1)
    assert r.capacity is not None
    assert data.active_power_average_w == r.capacity.average_w
    assert data.monthly_power_peak_w == r.capacity.month_peak.w
    assert data.monthly_power_peak_timestamp == r.capacity.month_peak.at.replace(tzinfo=None)
    assert data.wifi_ssid == "Simulated"
    assert data.wifi_strength is not None
    assert 0 < data.wifi_strength <= 100
    assert data.external_devices is not None
    gas = data.external_devices["gas_meter_SIM-G-00000000"]
    assert gas.timestamp == datetime(2026, 3, 10, 18, 5)  # the last 5-minute capture
    assert data.total_gas_m3 == gas.value
    assert data.gas_timestamp == gas.timestamp


async def test_every_grid_field_reads_alike_in_the_library_and_the_edge(
    api: HomeWizardEnergy, sim: Simulator
) -> None:
    """Issue 13.6: what the meter says of the grid and of its gas and water meters, read by the real
    client and by the edge's mapping from the same answer, after events counted through the control API."""
    async with http(sim) as client:
        for event in ({"event": "sag", "phase": 2}, {"event": "long_power_failure", "duration_s": 200}):
            assert (await client.post("/_sim/grid-event", json=event)).status_code == 200
        payload = (await client.get("/api/v1/data")).json()
    data = await api.data()  # the clock is frozen: the same reading
    s = build_sample(map_values(payload, V1_FIELDS, TZ, START))
    # The simulator starts at 6 failures (3 long), sags 3/2/2, swells 1/1/1; +1 sag on L2, +1 long failure.
    assert (data.any_power_fail_count, data.long_power_fail_count) == (7, 4)
    assert (s.power_fail_count, s.long_power_fail_count) == (7, 4)
    sags = (data.voltage_sag_l1_count, data.voltage_sag_l2_count, data.voltage_sag_l3_count)
    assert sags == (s.voltage_sag_l1_count, s.voltage_sag_l2_count, s.voltage_sag_l3_count) == (3, 3, 2)
    swells = (data.voltage_swell_l1_count, data.voltage_swell_l2_count, data.voltage_swell_l3_count)
    mapped = (s.voltage_swell_l1_count, s.voltage_swell_l2_count, s.voltage_swell_l3_count)
    assert swells == mapped == (1, 1, 1)
    assert data.active_frequency_hz is not None
    assert s.frequency_hz == data.active_frequency_hz
    # The ids: the library decodes the hex the meter sends; the edge keeps it as sent.
    assert data.external_devices is not None
    assert s.gas_unique_id is not None
    gas = data.external_devices["gas_meter_SIM-G-00000000"]
    assert bytes.fromhex(s.gas_unique_id).decode() == gas.unique_id == data.gas_unique_id == "SIM-G-00000000"
    assert s.gas_m3 == gas.value
    water = data.external_devices["water_meter_SIM-W-00000000"]
    assert s.water_unique_id is not None
    assert bytes.fromhex(s.water_unique_id).decode() == water.unique_id
    assert s.water_m3 == water.value


async def test_system_read_and_write(api: HomeWizardEnergy, sim: Simulator) -> None:
    assert (await api.system()).cloud_enabled is True
    assert await api.system_set(cloud_enabled=False) is True
    assert (await api.system()).cloud_enabled is False
    assert sim.appliance.cloud_enabled is False


async def test_identify(api: HomeWizardEnergy, sim: Simulator) -> None:
    assert await api.identify() is True
    assert sim.appliance.identified == 1


async def test_state_is_not_a_p1_feature(api: HomeWizardEnergy) -> None:
    with pytest.raises(UnsupportedError):  # 404, as on a real P1 (state is the Energy Socket's)
        await api.state()


async def test_telegram_is_text_with_the_datas_values(api: HomeWizardEnergy, sim: Simulator) -> None:
    text = await api.request("api/v1/telegram")
    assert isinstance(text, str)
    r = sim.model.reading()
    assert text.startswith("/SIM5\\253769484_A\r\n\r\n")
    assert f"0-0:96.1.1({r.unique_id})\r\n" in text
    assert "0-0:1.0.0(260310180730W)\r\n" in text
    assert f"1-0:1.8.1({r.import_wh[0] // 1000:06d}.{r.import_wh[0] % 1000:03d}*kWh)" in text


async def test_combined_gathers_everything_at_once(api: HomeWizardEnergy) -> None:
    """Later releases' ``combined()``: all calls in parallel, an unsupported one is None."""

    async def optional(call: Awaitable[object]) -> object:
        try:
            return await call
        except UnsupportedError:
            return None

    device, data, system, state = await asyncio.gather(
        optional(api.device()), optional(api.data()), optional(api.system()), optional(api.state())
    )
    assert isinstance(device, Device)
    assert isinstance(data, Data)
    assert isinstance(system, System)
    assert state is None  # a P1 has no state: the call is "not supported", as combined() expects
    assert data.active_power_w is not None
