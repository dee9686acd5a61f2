"""The one table that maps the meter's JSON (API v1 and v2) to the ``Sample`` contract.

Mappings are data, not branches (as in Home Assistant's homewizard integration): each row says which
meter field feeds which Sample field, in which unit. The few rules that are not a one-to-one copy sit
below the tables, each with its reason:

* null and absent are the same (older v1 firmware sends ``null`` for missing phases);
* a total missing from the meter is the sum of its tariff registers;
* local meter times (v1 ``YYMMDDhhmmss`` integers, v2 ISO 8601 without offset) get the meter's zone;
* gas and water come from ``external[]`` (complete entries only) or v1's legacy gas fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Final
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from p1_contracts.models import Meter, Sample


class Unit(Enum):
    WATT = "W"
    KWH = "kWh"
    VOLT = "V"
    AMPERE = "A"
    CUBIC_METRE = "m3"
    TARIFF = "tariff"  # an integer register number, 1..4
    LOCAL_TIME_V1 = "YYMMDDhhmmss"  # integer, meter's local time
    LOCAL_TIME_V2 = "ISO 8601 local"  # string without offset, meter's local time


@dataclass(frozen=True)
class FieldMap:
    source: str
    target: str
    unit: Unit


def _phases(src: str, dst: str, unit: Unit) -> tuple[FieldMap, ...]:
    return tuple(FieldMap(src.format(n), dst.format(n), unit) for n in (1, 2, 3))


def _tariffs(src: str, dst: str) -> tuple[FieldMap, ...]:
    return tuple(FieldMap(src.format(n), dst.format(n), Unit.KWH) for n in (1, 2, 3, 4))


V1_FIELDS: Final[tuple[FieldMap, ...]] = (
    FieldMap("active_power_w", "power_w", Unit.WATT),
    FieldMap("total_power_import_kwh", "import_kwh", Unit.KWH),
    FieldMap("total_power_export_kwh", "export_kwh", Unit.KWH),
    *_tariffs("total_power_import_t{}_kwh", "import_t{}_kwh"),
    *_tariffs("total_power_export_t{}_kwh", "export_t{}_kwh"),
    FieldMap("active_tariff", "tariff", Unit.TARIFF),
    *_phases("active_power_l{}_w", "power_l{}_w", Unit.WATT),
    *_phases("active_voltage_l{}_v", "voltage_l{}_v", Unit.VOLT),
    *_phases("active_current_l{}_a", "current_l{}_a", Unit.AMPERE),
    FieldMap("active_power_average_w", "avg_power_15m_w", Unit.WATT),
    FieldMap("montly_power_peak_w", "month_peak_w", Unit.WATT),  # sic: the real key
    FieldMap("montly_power_peak_timestamp", "month_peak_ts", Unit.LOCAL_TIME_V1),
    # Legacy gas fields; an entry in external[] wins over them (see _external).
    FieldMap("total_gas_m3", "gas_m3", Unit.CUBIC_METRE),
    FieldMap("gas_timestamp", "gas_ts", Unit.LOCAL_TIME_V1),
)

V2_FIELDS: Final[tuple[FieldMap, ...]] = (
    FieldMap("timestamp", "ts", Unit.LOCAL_TIME_V2),
    FieldMap("power_w", "power_w", Unit.WATT),
    FieldMap("energy_import_kwh", "import_kwh", Unit.KWH),
    FieldMap("energy_export_kwh", "export_kwh", Unit.KWH),
    *_tariffs("energy_import_t{}_kwh", "import_t{}_kwh"),
    *_tariffs("energy_export_t{}_kwh", "export_t{}_kwh"),
    FieldMap("tariff", "tariff", Unit.TARIFF),
    *_phases("power_l{}_w", "power_l{}_w", Unit.WATT),
    *_phases("voltage_l{}_v", "voltage_l{}_v", Unit.VOLT),
    *_phases("current_l{}_a", "current_l{}_a", Unit.AMPERE),
    FieldMap("average_power_15m_w", "avg_power_15m_w", Unit.WATT),
    FieldMap("monthly_power_peak_w", "month_peak_w", Unit.WATT),
    FieldMap("monthly_power_peak_timestamp", "month_peak_ts", Unit.LOCAL_TIME_V2),
)

# external[].type → (value field, time field) of the Sample. Heat meters have no place in the contract.
EXTERNAL_TYPES: Final[Mapping[str, tuple[str, str]]] = {
    "gas_meter": ("gas_m3", "gas_ts"),
    "water_meter": ("water_m3", "water_ts"),
}

# A total the meter does not give is the sum of its tariff registers (DESIGN §5).
TOTALS_FROM_TARIFFS: Final[Mapping[str, tuple[str, ...]]] = {
    "import_kwh": tuple(f"import_t{n}_kwh" for n in (1, 2, 3, 4)),
    "export_kwh": tuple(f"export_t{n}_kwh" for n in (1, 2, 3, 4)),
}

# v1/v2 meter identity fields → Meter fields.
METER_FIELDS: Final[Mapping[str, str]] = {
    "unique_id": "serial",
    "meter_model": "model",
    "smr_version": "protocol_version",
    "protocol_version": "protocol_version",
}

JsonValue = object
Values = dict[str, float | int | datetime]


class UnusableReading(ValueError):
    """The payload lacks what every Sample needs (power and both totals) or breaks the contract."""


def map_fields(payload: Mapping[str, JsonValue], table: tuple[FieldMap, ...], tz: ZoneInfo) -> Values:
    """Applies ``table`` and the rules above; returns only the fields the meter gave."""
    values: Values = {}
    for row in table:
        converted = _convert(payload.get(row.source), row.unit, tz)
        if converted is not None:
            values[row.target] = converted
    time_unit = Unit.LOCAL_TIME_V2 if table is V2_FIELDS else Unit.LOCAL_TIME_V1
    values.update(_external(payload.get("external"), time_unit, tz))
    for total, registers in TOTALS_FROM_TARIFFS.items():
        if total not in values:
            present = [v for r in registers if isinstance(v := values.get(r), float)]
            if present:
                # round to the meter's resolution (1 Wh) so float noise does not look like energy
                values[total] = round(math.fsum(present), 3)
    return values


def to_sample(
    payload: Mapping[str, JsonValue], table: tuple[FieldMap, ...], tz: ZoneInfo, polled_at: datetime
) -> Sample:
    """One Sample; ``polled_at`` (aware) is the reading's time when the meter gives none (v1)."""
    values: Values = {"ts": polled_at}
    values.update(map_fields(payload, table, tz))
    missing = [f for f in ("power_w", "import_kwh", "export_kwh") if f not in values]
    if missing:
        raise UnusableReading(f"meter gave no {', '.join(missing)}")
    try:
        return Sample.model_validate(values)
    except ValidationError as exc:
        raise UnusableReading(str(exc)) from exc


def to_meter(payload: Mapping[str, JsonValue]) -> Meter | None:
    """The smart meter's identity; None when the meter gives no ``unique_id``."""
    fields: dict[str, str | int] = {}
    for source, target in METER_FIELDS.items():
        value = payload.get(source)
        if isinstance(value, str) and value and target != "protocol_version":
            fields[target] = value.strip()
        elif isinstance(value, int) and not isinstance(value, bool) and target == "protocol_version":
            fields[target] = value
    if "serial" not in fields:
        return None
    try:
        return Meter.model_validate(fields)
    except ValidationError:
        return None


def _convert(value: JsonValue, unit: Unit, tz: ZoneInfo) -> float | int | datetime | None:
    if value is None or isinstance(value, bool):
        return None
    if unit is Unit.TARIFF:
        return value if isinstance(value, int) and 1 <= value <= 4 else None
    if unit is Unit.LOCAL_TIME_V1:
        return _v1_time(value, tz)
    if unit is Unit.LOCAL_TIME_V2:
        return _v2_time(value, tz)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _v1_time(value: JsonValue, tz: ZoneInfo) -> datetime | None:
    """``210606140010`` → 2021-06-06 14:00:10 in the meter's zone (DSMR gives local time)."""
    if not isinstance(value, int | str):
        return None
    digits = str(value)
    if len(digits) != 12 or not digits.isdigit():
        return None
    try:
        local = datetime.strptime(digits, "%y%m%d%H%M%S")
    except ValueError:
        return None
    return local.replace(tzinfo=tz)


def _v2_time(value: JsonValue, tz: ZoneInfo) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # v2 sends local time without an offset; should a later firmware add one, respect it.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _external(entries: JsonValue, time_unit: Unit, tz: ZoneInfo) -> Values:
    """Gas/water from complete ``external[]`` entries; the first complete entry of a type wins."""
    values: Values = {}
    if not isinstance(entries, list):
        return values
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("unique_id"):
            continue
        targets = EXTERNAL_TYPES.get(str(entry.get("type")))
        if targets is None or entry.get("unit") != "m3" or targets[0] in values:
            continue
        amount = _convert(entry.get("value"), Unit.CUBIC_METRE, tz)
        when = _convert(entry.get("timestamp"), time_unit, tz)
        if isinstance(amount, float) and isinstance(when, datetime):
            values[targets[0]] = amount
            values[targets[1]] = when
    return values
