"""The one table that maps the meter's JSON (API v1 and v2) to the ``Sample`` contract.

Mappings are data, not branches (as in Home Assistant's homewizard integration): each row of
:data:`TABLE` names a Sample field, its unit, and the key that carries it in API v1 and in API v2.
The few rules that are not a one-to-one copy sit below the table, each with its reason:

* null and absent are the same (older v1 firmware sends ``null`` for missing phases);
* a total missing from the meter is the sum of its tariff registers;
* local meter times (v1 ``YYMMDDhhmmss`` integers, v2 ISO 8601 without offset) get the meter's zone;
* gas and water come from ``external[]`` (complete entries only, with the meter's ``unique_id``) or
  v1's legacy gas fields;
* a grid-quality value or a meter id that breaks the contract (a count of -1, a frequency of 0 Hz, an id
  that is not hex) is dropped alone: it says the meter misread that value, not that its energy is wrong;
* a time outside ``p1_contracts.timerange`` (a Pi whose clock is not set yet says 1970; a meter's
  two-digit year may read 1999) is never spooled, since ingest would refuse the whole batch for it: the
  reading's own time makes the reading unusable, an auxiliary time is dropped with its value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Final, Literal
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from p1_contracts import timerange
from p1_contracts.models import Meter, Sample


class Unit(Enum):
    WATT = "W"
    KWH = "kWh"
    VOLT = "V"
    AMPERE = "A"
    CUBIC_METRE = "m3"
    HERTZ = "Hz"
    COUNT = "count"  # a whole number of events since the meter was installed
    HEX_ID = "hex id"  # an equipment id, hex digits of its text, as the meter sends it
    TARIFF = "tariff"  # an integer register number, 1..4
    # The meter's local time: v1 an integer YYMMDDhhmmss, v2 ISO 8601 without an offset.
    LOCAL_TIME = "local time"


@dataclass(frozen=True)
class Row:
    """One Sample field, its unit, and the key that carries it in each API (None: not given)."""

    target: str
    unit: Unit
    v1: str | None  # GET /api/v1/data
    v2: str | None  # GET /api/measurement


_PHASES = (1, 2, 3)
_TARIFFS = (1, 2, 3, 4)

TABLE: Final[tuple[Row, ...]] = (
    Row("ts", Unit.LOCAL_TIME, None, "timestamp"),  # v1 gives no reading time: the poll's time
    Row("power_w", Unit.WATT, "active_power_w", "power_w"),
    Row("import_kwh", Unit.KWH, "total_power_import_kwh", "energy_import_kwh"),
    Row("export_kwh", Unit.KWH, "total_power_export_kwh", "energy_export_kwh"),
    *(
        Row(f"import_t{n}_kwh", Unit.KWH, f"total_power_import_t{n}_kwh", f"energy_import_t{n}_kwh")
        for n in _TARIFFS
    ),
    *(
        Row(f"export_t{n}_kwh", Unit.KWH, f"total_power_export_t{n}_kwh", f"energy_export_t{n}_kwh")
        for n in _TARIFFS
    ),
    Row("tariff", Unit.TARIFF, "active_tariff", "tariff"),
    *(Row(f"power_l{n}_w", Unit.WATT, f"active_power_l{n}_w", f"power_l{n}_w") for n in _PHASES),
    *(Row(f"voltage_l{n}_v", Unit.VOLT, f"active_voltage_l{n}_v", f"voltage_l{n}_v") for n in _PHASES),
    *(Row(f"current_l{n}_a", Unit.AMPERE, f"active_current_l{n}_a", f"current_l{n}_a") for n in _PHASES),
    Row("avg_power_15m_w", Unit.WATT, "active_power_average_w", "average_power_15m_w"),
    # sic: "montly" is how v1 really spells it
    Row("month_peak_w", Unit.WATT, "montly_power_peak_w", "monthly_power_peak_w"),
    Row("month_peak_ts", Unit.LOCAL_TIME, "montly_power_peak_timestamp", "monthly_power_peak_timestamp"),
    # v1's legacy gas fields; an entry in external[] wins over them (see _external)
    Row("gas_m3", Unit.CUBIC_METRE, "total_gas_m3", None),
    Row("gas_ts", Unit.LOCAL_TIME, "gas_timestamp", None),
    Row("gas_unique_id", Unit.HEX_ID, "gas_unique_id", None),
    # The grid connection's quality (docs/design.md, "What the edge keeps of a reading").
    Row("current_a", Unit.AMPERE, "active_current_a", "current_a"),
    Row("frequency_hz", Unit.HERTZ, "active_frequency_hz", "frequency_hz"),
    Row("power_fail_count", Unit.COUNT, "any_power_fail_count", "any_power_fail_count"),
    Row("long_power_fail_count", Unit.COUNT, "long_power_fail_count", "long_power_fail_count"),
    *(
        Row(f"voltage_sag_l{n}_count", Unit.COUNT, f"voltage_sag_l{n}_count", f"voltage_sag_l{n}_count")
        for n in _PHASES
    ),
    *(
        Row(f"voltage_swell_l{n}_count", Unit.COUNT, f"voltage_swell_l{n}_count", f"voltage_swell_l{n}_count")
        for n in _PHASES
    ),
)


@dataclass(frozen=True)
class FieldMap:
    """One row of :data:`TABLE` as one API version reads it."""

    source: str
    target: str
    unit: Unit
    api: Literal["v1", "v2"]


V1_FIELDS: Final[tuple[FieldMap, ...]] = tuple(
    FieldMap(r.v1, r.target, r.unit, "v1") for r in TABLE if r.v1 is not None
)
V2_FIELDS: Final[tuple[FieldMap, ...]] = tuple(
    FieldMap(r.v2, r.target, r.unit, "v2") for r in TABLE if r.v2 is not None
)

# external[].type → (value field, time field, id field) of the Sample. Heat meters have no place in the
# contract (docs/design.md, "What the edge keeps of a reading").
EXTERNAL_TYPES: Final[Mapping[str, tuple[str, str, str]]] = {
    "gas_meter": ("gas_m3", "gas_ts", "gas_unique_id"),
    "water_meter": ("water_m3", "water_ts", "water_unique_id"),
}

# A total the meter does not give is the sum of its tariff registers (docs/design.md §10).
TOTALS_FROM_TARIFFS: Final[Mapping[str, tuple[str, ...]]] = {
    "import_kwh": tuple(f"import_t{n}_kwh" for n in (1, 2, 3, 4)),
    "export_kwh": tuple(f"export_t{n}_kwh" for n in (1, 2, 3, 4)),
}

# Auxiliary meter times → the values each one dates (dropped together when the time is out of range).
DATED_VALUES: Final[Mapping[str, tuple[str, ...]]] = {
    "month_peak_ts": ("month_peak_w",),
    **{when: (value, unique_id) for value, when, unique_id in EXTERNAL_TYPES.values()},
}

# Values dropped alone when they break the contract (see the module doc): the grid's quality and the ids.
DROPPED_ALONE: Final = frozenset(
    r.target for r in TABLE if r.unit in (Unit.HERTZ, Unit.COUNT, Unit.HEX_ID) or r.target == "current_a"
) | frozenset(unique_id for _, _, unique_id in EXTERNAL_TYPES.values())

# v1/v2 meter identity fields → Meter fields.
METER_FIELDS: Final[Mapping[str, str]] = {
    "unique_id": "serial",
    "meter_model": "model",
    "smr_version": "protocol_version",
    "protocol_version": "protocol_version",
}

JsonValue = object
Values = dict[str, float | int | datetime | str]


class UnusableReading(ValueError):
    """The payload lacks what every Sample needs (power and both totals) or breaks the contract."""


def map_fields(payload: Mapping[str, JsonValue], table: tuple[FieldMap, ...], tz: ZoneInfo) -> Values:
    """Applies ``table`` and the rules above; returns only the fields the meter gave."""
    values: Values = {}
    api: Literal["v1", "v2"] = table[0].api if table else "v1"
    for row in table:
        converted = _convert(payload.get(row.source), row.unit, tz, row.api)
        if converted is not None:
            values[row.target] = converted
    values.update(_external(payload.get("external"), api, tz))
    for total, registers in TOTALS_FROM_TARIFFS.items():
        if total not in values:
            present = [v for r in registers if isinstance(v := values.get(r), float)]
            if present:
                # round to the meter's resolution (1 Wh) so float noise does not look like energy
                values[total] = round(math.fsum(present), 3)
    return values


def map_values(
    payload: Mapping[str, JsonValue], table: tuple[FieldMap, ...], tz: ZoneInfo, polled_at: datetime
) -> Values:
    """:func:`map_fields` with the reading's time: the meter's, else (v1) ``polled_at``. Local times are
    still in the meter's zone, first pass of a repeated hour (``meter/localtime.py`` places them)."""
    values: Values = {"ts": polled_at}
    values.update(map_fields(payload, table, tz))
    return values


def build_sample(values: Values) -> Sample:
    """The Sample of mapped values; raises UnusableReading when they break the contract."""
    missing = [f for f in ("power_w", "import_kwh", "export_kwh") if f not in values]
    if missing:
        raise UnusableReading(f"meter gave no {', '.join(missing)}")
    _drop_out_of_range(values)
    try:
        return Sample.model_validate(values)
    except ValidationError as exc:
        wrong = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        if not wrong or not wrong <= DROPPED_ALONE:
            raise UnusableReading(str(exc)) from exc
    for name in wrong:
        del values[name]
    try:
        return Sample.model_validate(values)
    except ValidationError as exc:  # not seen: the values left were valid a moment ago
        raise UnusableReading(str(exc)) from exc


def _drop_out_of_range(values: Values) -> None:
    """Applies the supported time range: see the module doc."""
    ts = values["ts"]
    if isinstance(ts, datetime) and not timerange.in_range(ts):
        raise UnusableReading(f"reading time {ts.isoformat()} is not {timerange.DESCRIPTION}")
    for when, dated in DATED_VALUES.items():
        at = values.get(when)
        if isinstance(at, datetime) and not timerange.in_range(at):
            del values[when]
            for value in dated:
                values.pop(value, None)


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


def _convert(
    value: JsonValue, unit: Unit, tz: ZoneInfo, api: Literal["v1", "v2"]
) -> float | int | datetime | str | None:
    if value is None or isinstance(value, bool):
        return None
    if unit is Unit.HEX_ID:  # kept as sent; one that is not hex digits is dropped (build_sample)
        return value if isinstance(value, str) and value else None
    if unit is Unit.TARIFF:
        return value if isinstance(value, int) and 1 <= value <= 4 else None
    if unit is Unit.LOCAL_TIME:
        return _v1_time(value, tz) if api == "v1" else _v2_time(value, tz)
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


def _external(entries: JsonValue, api: Literal["v1", "v2"], tz: ZoneInfo) -> Values:
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
        amount = _convert(entry.get("value"), Unit.CUBIC_METRE, tz, api)
        when = _convert(entry.get("timestamp"), Unit.LOCAL_TIME, tz, api)
        unique_id = _convert(entry.get("unique_id"), Unit.HEX_ID, tz, api)
        if isinstance(amount, float) and isinstance(when, datetime) and isinstance(unique_id, str):
            values[targets[0]] = amount
            values[targets[1]] = when
            values[targets[2]] = unique_id
    return values
