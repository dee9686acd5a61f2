"""The meter model rendered as the JSON of API v1 (``/api/v1/data``) and v2 (``/api/measurement``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from p1_edge.simulator.model import MeterModel

JsonObject = dict[str, object]
Renderer = Callable[[MeterModel], JsonObject]


def _kwh(joules: int) -> float:
    return round(joules / 3_600_000, 3)


def _phase_values(model: MeterModel) -> list[tuple[int, float, float, float]]:
    """(phase, W, V, A) for each phase the profile uses."""
    st = model.state
    powers = [st.load.l1, st.load.l2, st.load.l3] if model.profile.three_phase else [st.load.l1]
    out = []
    for n, watts in enumerate(powers, start=1):
        volts = round(230.0 + 3.0 * math.sin(st.second / 600.0 + n), 1)
        out.append((n, float(watts), volts, round(watts / volts, 2)))
    return out


def _v1_time(ts: datetime) -> int:
    return int(ts.strftime("%y%m%d%H%M%S"))


def _v2_time(ts: datetime) -> str:
    return ts.replace(tzinfo=None).isoformat(timespec="seconds")


def device_v1(serial: str) -> JsonObject:
    return {
        "product_type": "HWE-P1",
        "product_name": "P1 Meter",
        "serial": serial,
        "firmware_version": "5.18",
        "api_version": "v1",
    }


def device_v2(serial: str) -> JsonObject:
    return {
        "product_name": "P1 Meter",
        "product_type": "HWE-P1",
        "serial": serial,
        "firmware_version": "6.00",
        "api_version": "2.0.0",
    }


def data_v1(model: MeterModel) -> JsonObject:
    st = model.state
    body: JsonObject = {
        "wifi_ssid": "Simulated",
        "wifi_strength": 100,
        "smr_version": 50,
        "meter_model": "SIMULATED  2M550T-101",
        "unique_id": model.unique_id(),
        "active_tariff": st.tariff,
        "total_power_import_kwh": _kwh(sum(st.import_j)),
        "total_power_import_t1_kwh": _kwh(st.import_j[0]),
        "total_power_import_t2_kwh": _kwh(st.import_j[1]),
        "total_power_export_kwh": _kwh(sum(st.export_j)),
        "total_power_export_t1_kwh": _kwh(st.export_j[0]),
        "total_power_export_t2_kwh": _kwh(st.export_j[1]),
        "active_power_w": st.load.total,
        "active_frequency_hz": 50,
        "active_power_average_w": round(model.avg_power_15m_w(), 3),
        "montly_power_peak_w": round(st.month_peak_w, 3),  # sic, as the real meter spells it
    }
    if st.month_peak_ts is not None:
        body["montly_power_peak_timestamp"] = _v1_time(st.month_peak_ts)
    for n, watts, volts, amps in _phase_values(model):
        body[f"active_power_l{n}_w"] = watts
        body[f"active_voltage_l{n}_v"] = volts
        body[f"active_current_l{n}_a"] = amps
    external: list[JsonObject] = []
    if model.profile.has_gas:
        gas, gas_ts = model.gas_reading()
        body["total_gas_m3"] = gas
        body["gas_timestamp"] = _v1_time(gas_ts)
        body["gas_unique_id"] = b"SIMGAS".hex().upper()
        external.append(_external("gas_meter", "SIMGAS", _v1_time(gas_ts), gas))
    if model.profile.has_water:
        water, water_ts = model.water_reading()
        external.append(_external("water_meter", "SIMWATER", _v1_time(water_ts), water))
    if external:
        body["external"] = external
    return body


def measurement_v2(model: MeterModel) -> JsonObject:
    st = model.state
    body: JsonObject = {
        "protocol_version": 50,
        "meter_model": "SIMULATED  2M550T-101",
        "unique_id": model.unique_id(),
        "timestamp": _v2_time(model.local_time()),
        "tariff": st.tariff,
        "energy_import_kwh": _kwh(sum(st.import_j)),
        "energy_import_t1_kwh": _kwh(st.import_j[0]),
        "energy_import_t2_kwh": _kwh(st.import_j[1]),
        "energy_export_kwh": _kwh(sum(st.export_j)),
        "energy_export_t1_kwh": _kwh(st.export_j[0]),
        "energy_export_t2_kwh": _kwh(st.export_j[1]),
        "power_w": st.load.total,
        "average_power_15m_w": round(model.avg_power_15m_w(), 3),
        "monthly_power_peak_w": round(st.month_peak_w, 3),
    }
    if st.month_peak_ts is not None:
        body["monthly_power_peak_timestamp"] = _v2_time(st.month_peak_ts)
    phases = _phase_values(model)
    for n, watts, volts, amps in phases:
        body[f"power_l{n}_w"] = watts
        body[f"voltage_l{n}_v"] = volts
        body[f"current_l{n}_a"] = amps
    body["current_a"] = round(sum(abs(a) for *_, a in phases), 2)
    external: list[JsonObject] = []
    if model.profile.has_gas:
        gas, gas_ts = model.gas_reading()
        external.append(_external("gas_meter", "SIMGAS", _v2_time(gas_ts), gas))
    if model.profile.has_water:
        water, water_ts = model.water_reading()
        external.append(_external("water_meter", "SIMWATER", _v2_time(water_ts), water))
    if external:
        body["external"] = external
    return body


def _external(kind: str, name: str, timestamp: int | str, value: float) -> JsonObject:
    return {
        "unique_id": name.encode().hex().upper(),
        "type": kind,
        "timestamp": timestamp,
        "value": value,
        "unit": "m3",
    }
