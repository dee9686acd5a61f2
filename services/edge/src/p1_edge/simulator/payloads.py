"""A meter reading as the JSON of API v1 (``/api/v1/data``) and v2 (``/api/measurement``).

Key names, order and number formats follow HomeWizard's API documentation and the HWE-P1 fixtures of
python-homewizard-energy: a field the meter does not give is absent (never null); v1 times are
``YYMMDDhhmmss`` integers and v2 times ISO 8601 without an offset, both in the meter's local time;
v1 keeps its misspelled ``montly_power_peak_*`` keys; Wi-Fi is part of v1's data but of v2's ``/api/system``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from p1_edge.simulator.reading import Mbus, MeterReading, Phase

JsonObject = dict[str, object]


def kwh(wh: int) -> float:
    return wh / 1000


def _amps(current: Decimal) -> float | int:
    """Whole amperes stay integers (as Dutch meters give them), finer ones are decimals."""
    return int(current) if current.as_tuple().exponent == 0 else float(current)


def v1_time(ts: datetime) -> int:
    return int(ts.strftime("%y%m%d%H%M%S"))


def v2_time(ts: datetime) -> str:
    return ts.replace(tzinfo=None).isoformat(timespec="seconds")


def wifi_strength_pct(rssi_db: int) -> int:
    """HomeWizard's mapping of the signal to a percentage (the one python-homewizard-energy applies)."""
    if rssi_db <= -100 or rssi_db == 0:
        return 0
    return 100 if rssi_db >= -50 else 2 * (rssi_db + 100)


def _energy(r: MeterReading, prefix: str) -> JsonObject:
    """Totals and registers; ``prefix`` is v1's ``total_power`` or v2's ``energy``."""
    return {
        f"{prefix}_import_kwh": kwh(r.import_total_wh),
        f"{prefix}_import_t1_kwh": kwh(r.import_wh[0]),
        f"{prefix}_import_t2_kwh": kwh(r.import_wh[1]),
        f"{prefix}_export_kwh": kwh(r.export_total_wh),
        f"{prefix}_export_t1_kwh": kwh(r.export_wh[0]),
        f"{prefix}_export_t2_kwh": kwh(r.export_wh[1]),
    }


def _per_phase(phases: tuple[Phase, ...], prefix: str) -> JsonObject:
    """Power, voltage, current of each phase; ``prefix`` is v1's ``active_`` or v2's empty one."""
    body: JsonObject = {f"{prefix}power_l{p.n}_w": p.power_w for p in phases}
    body.update({f"{prefix}voltage_l{p.n}_v": p.voltage_dv / 10 for p in phases if p.voltage_dv is not None})
    body.update({f"{prefix}current_l{p.n}_a": _amps(p.current_a) for p in phases})
    return body


def _quality(r: MeterReading) -> JsonObject:
    body: JsonObject = {f"voltage_sag_l{n}_count": c for n, c in enumerate(r.sags, start=1)}
    body.update({f"voltage_swell_l{n}_count": c for n, c in enumerate(r.swells, start=1)})
    body["any_power_fail_count"] = r.power_failures
    body["long_power_fail_count"] = r.long_power_failures
    return body


def _external(mbus: tuple[Mbus, ...], v1: bool) -> list[JsonObject]:
    return [
        {
            "unique_id": m.unique_id,
            "type": m.kind,
            "timestamp": v1_time(m.captured) if v1 else v2_time(m.captured),
            "value": m.litres / 1000,
            "unit": "m3",
        }
        for m in mbus
    ]


def data_v1(r: MeterReading, wifi_ssid: str, wifi_rssi_db: int) -> JsonObject:
    body: JsonObject = {
        "wifi_ssid": wifi_ssid,
        "wifi_strength": wifi_strength_pct(wifi_rssi_db),
        "smr_version": r.flavour.smr_version,
        "meter_model": r.flavour.meter_model,
        "unique_id": r.unique_id,
        "active_tariff": r.tariff,
        **_energy(r, "total_power"),
        "active_power_w": r.power_w,
        **_per_phase(r.phases, "active_"),
    }
    if r.frequency_chz is not None:
        body["active_frequency_hz"] = r.frequency_chz / 100
    body.update(_quality(r))
    gas = next((m for m in r.mbus if m.kind == "gas_meter"), None)
    if gas is not None:  # v1's legacy fields: the first gas meter
        body.update(
            total_gas_m3=gas.litres / 1000, gas_timestamp=v1_time(gas.captured), gas_unique_id=gas.unique_id
        )
    if r.capacity is not None:
        body["active_power_average_w"] = float(r.capacity.average_w)
        body["montly_power_peak_w"] = float(r.capacity.month_peak.w)  # sic, as the real meter spells it
        body["montly_power_peak_timestamp"] = v1_time(r.capacity.month_peak.at)
    if r.mbus:
        body["external"] = _external(r.mbus, v1=True)
    return body


def measurement_v2(r: MeterReading) -> JsonObject:
    body: JsonObject = {
        "protocol_version": r.flavour.smr_version,
        "meter_model": r.flavour.meter_model,
        "unique_id": r.unique_id,
        "timestamp": v2_time(r.at),
        "tariff": r.tariff,
        **_energy(r, "energy"),
        "power_w": r.power_w,
        **_per_phase(r.phases, ""),
        "current_a": _amps(sum((abs(p.current_a) for p in r.phases), Decimal(0))),
    }
    if r.frequency_chz is not None:
        body["frequency_hz"] = r.frequency_chz / 100
    body.update(_quality(r))
    if r.capacity is not None:
        body["average_power_15m_w"] = float(r.capacity.average_w)
        body["monthly_power_peak_w"] = float(r.capacity.month_peak.w)
        body["monthly_power_peak_timestamp"] = v2_time(r.capacity.month_peak.at)
    if r.mbus:
        body["external"] = _external(r.mbus, v1=False)
    return body


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
