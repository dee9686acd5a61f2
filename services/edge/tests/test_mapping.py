"""Every fixture case through the one mapping table: values, units, nulls, sums and local times."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from p1_contracts.models import Sample
from p1_edge.meter.mapping import (
    V1_FIELDS,
    V2_FIELDS,
    FieldMap,
    UnusableReading,
    build_sample,
    map_fields,
    map_values,
    to_meter,
)

FIXTURES = Path(__file__).parent / "fixtures"
BRUSSELS = ZoneInfo("Europe/Brussels")
POLLED = datetime(2024, 6, 28, 12, 12, 34, tzinfo=UTC)


def load(name: str) -> dict[str, object]:
    body: dict[str, object] = json.loads((FIXTURES / name).read_text())
    return body


def to_sample(
    payload: dict[str, object], table: tuple[FieldMap, ...], tz: ZoneInfo, polled_at: datetime
) -> Sample:
    """One Sample, as the client builds it (``polled_at`` is the reading's time when the meter gives none)."""
    return build_sample(map_values(payload, table, tz, polled_at))  # type: ignore[arg-type]


def local(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BRUSSELS)


def test_v1_all_fields() -> None:
    s = to_sample(load("v1_data_all_fields.json"), V1_FIELDS, BRUSSELS, POLLED)
    assert s.ts == POLLED  # v1 has no reading time: the poll's time
    assert (s.power_w, s.import_kwh, s.export_kwh) == (-543.0, 13779.338, 0.0)
    assert (s.import_t1_kwh, s.import_t2_kwh, s.import_t3_kwh) == (10830.511, 2948.827, None)
    assert s.tariff == 2
    assert (s.power_l1_w, s.power_l2_w, s.power_l3_w) == (-676.0, 133.0, 0.0)
    assert (s.current_l1_a, s.current_l2_a) == (-4.0, 2.0)
    assert s.voltage_l1_v is None
    assert (s.avg_power_15m_w, s.month_peak_w) == (123.0, 1111.0)
    # the misspelled real key, YYMMDDhhmmss in local (winter) time
    assert s.month_peak_ts == local(2023, 1, 1, 8, 0, 10)
    assert s.month_peak_ts.utcoffset().total_seconds() == 3600  # type: ignore[union-attr]
    # external[] wins over the legacy total_gas_m3 (2569.646)
    assert s.gas_m3 == 111.111
    assert s.gas_ts == local(2021, 6, 6, 14, 0, 10)
    # issue 13.6: the grid's quality and the external meters' ids, as the fixture gives them
    assert s.frequency_hz == 50.0
    assert (s.power_fail_count, s.long_power_fail_count) == (4, 5)
    assert (s.voltage_sag_l1_count, s.voltage_sag_l2_count, s.voltage_sag_l3_count) == (1, 1, 0)
    assert (s.voltage_swell_l1_count, s.voltage_swell_l2_count, s.voltage_swell_l3_count) == (0, 0, 0)
    assert s.current_a is None  # v1 gives no total current for a P1 meter
    assert (s.gas_unique_id, s.water_unique_id) == ("4E474C5944", "4E475347")
    assert s.water_m3 == 444.444  # heat / warm water / inlet heat have no place in the contract
    meter = to_meter(load("v1_data_all_fields.json"))
    assert meter is not None
    assert (meter.serial, meter.model, meter.protocol_version) == ("4E47475955", "ISKRA  2M550T-101", 50)


def test_v1_minimal_sums_tariff_registers_into_totals() -> None:
    s = to_sample(load("v1_data_minimal.json"), V1_FIELDS, BRUSSELS, POLLED)
    assert s.import_kwh == 13779.338  # 10830.511 + 2948.827
    assert s.export_kwh == 4162.461  # 1285.951 + 2876.51
    assert s.tariff is None
    assert s.gas_m3 == 2569.646  # legacy gas fields when there is no external[]
    assert s.gas_ts == local(2021, 6, 6, 14, 0, 10)
    assert s.water_m3 is None
    assert to_meter(load("v1_data_minimal.json")) is None  # no unique_id


def test_v1_single_phase_nulls_are_absent() -> None:
    s = to_sample(load("v1_data_single_phase_nulls.json"), V1_FIELDS, BRUSSELS, POLLED)
    assert s.power_l1_w == -676.0
    assert s.power_l2_w is None
    assert s.power_l3_w is None
    assert "power_l2_w" not in s.model_dump(exclude_none=True)


def test_v1_home_assistant_t1_t4_and_voltages() -> None:
    s = to_sample(load("v1_data_ha_3phase_t1-t4_voltages.json"), V1_FIELDS, BRUSSELS, POLLED)
    assert (s.import_t3_kwh, s.import_t4_kwh) == (2948.827, 2948.827)
    assert (s.export_kwh, s.export_t4_kwh) == (13086.777, 8765.444)  # the meter's total wins
    assert (s.voltage_l1_v, s.voltage_l2_v, s.voltage_l3_v) == (230.111, 230.222, 230.333)
    assert s.power_l3_w == 123.456
    assert s.gas_m3 == 1122.333
    assert s.gas_ts == local(2021, 3, 14, 11, 22, 33)
    assert s.water_m3 is None  # total_liter_m3 is a water-meter field, not a P1 one
    assert s.gas_unique_id == "01FFEEDDCCBBAA99887766554433221100"  # v1's legacy gas id
    assert (s.voltage_sag_l3_count, s.voltage_swell_l1_count, s.voltage_swell_l3_count) == (3, 4, 6)


def test_v1_invalid_external_entries_are_skipped() -> None:
    payload = load("v1_data_invalid_external_entries.json")
    values = map_fields(payload, V1_FIELDS, BRUSSELS)
    # every external entry lacks one key: none is used; the legacy gas fields remain
    assert values["gas_m3"] == 2569.646
    assert values["gas_ts"] == local(2021, 6, 6, 14, 0, 10)
    assert "water_m3" not in values
    # and without power or totals this is no reading at all
    with pytest.raises(UnusableReading, match="power_w"):
        to_sample(payload, V1_FIELDS, BRUSSELS, POLLED)


def test_v2_three_phase_gas_water() -> None:
    s = to_sample(load("v2_measurement_3_phase_gas_water.json"), V2_FIELDS, BRUSSELS, POLLED)
    # offset-less ISO time in the meter's zone (CEST in June)
    assert s.ts == local(2024, 6, 28, 14, 12, 34)
    assert s.ts.isoformat() == "2024-06-28T14:12:34+02:00"
    assert (s.power_w, s.import_kwh, s.export_kwh, s.tariff) == (-543.0, 13779.338, 0.0, 2)
    assert (s.current_l1_a, s.current_l2_a, s.current_l3_a) == (-4.0, 2.0, 0.0)
    assert (s.avg_power_15m_w, s.month_peak_w) == (123.0, 1111.0)
    assert s.month_peak_ts == local(2024, 6, 4, 10, 11, 22)
    assert (s.gas_m3, s.gas_ts) == (2569.646, local(2024, 6, 28, 14, 0, 0))
    assert (s.water_m3, s.water_ts) == (123.456, local(2024, 6, 28, 14, 5, 0))
    assert s.current_a == 6.0
    assert (s.power_fail_count, s.long_power_fail_count) == (4, 5)
    assert (s.voltage_sag_l1_count, s.voltage_sag_l2_count, s.voltage_sag_l3_count) == (1, 1, 0)
    assert s.frequency_hz is None  # not in this fixture
    assert s.gas_unique_id == "4E6576657220676F6E6E612072756E2061726F756E64"
    assert s.water_unique_id == "616E642064657365727420796F75"


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("any_power_fail_count", -1, "power_fail_count"),
        ("voltage_sag_l2_count", 2.5, "voltage_sag_l2_count"),
        ("voltage_swell_l3_count", 100000, "voltage_swell_l3_count"),
        ("frequency_hz", 0, "frequency_hz"),
        ("frequency_hz", 1e9, "frequency_hz"),
        ("current_a", 1e6, "current_a"),
    ],
)
def test_a_grid_value_out_of_contract_is_dropped_alone(key: str, value: float, field: str) -> None:
    payload = load("v2_measurement_3_phase_gas_water.json")
    payload[key] = value
    s = to_sample(payload, V2_FIELDS, BRUSSELS, POLLED)
    assert getattr(s, field) is None
    assert (s.power_w, s.import_kwh, s.long_power_fail_count) == (-543.0, 13779.338, 5)  # the rest kept


def test_an_external_id_that_is_not_hex_is_dropped_with_the_reading_kept() -> None:
    payload = load("v2_measurement_3_phase_gas_water.json")
    entries = payload["external"]
    assert isinstance(entries, list)
    entries[0]["unique_id"] = 'G0032,"null"'
    s = to_sample(payload, V2_FIELDS, BRUSSELS, POLLED)
    assert (s.gas_m3, s.gas_unique_id) == (2569.646, None)
    assert s.water_unique_id == "616E642064657365727420796F75"


def test_v2_one_phase_no_gas() -> None:
    s = to_sample(load("v2_measurement_1_phase_no_gas.json"), V2_FIELDS, BRUSSELS, POLLED)
    assert s.ts == local(2024, 6, 28, 14, 12, 34)
    assert s.import_kwh == 13779.338
    assert s.export_kwh == 4162.461
    assert (s.power_w, s.power_l1_w, s.power_l2_w) == (-678.0, -676.0, None)
    assert s.gas_m3 is None
    assert s.water_m3 is None
    assert s.tariff is None
    meter = to_meter(load("v2_measurement_1_phase_no_gas.json"))
    assert meter is not None
    assert meter.protocol_version == 50


def test_meter_time_zone_is_configurable() -> None:
    utc = ZoneInfo("UTC")
    s = to_sample(load("v2_measurement_1_phase_no_gas.json"), V2_FIELDS, utc, POLLED)
    assert s.ts.isoformat() == "2024-06-28T14:12:34+00:00"


@pytest.mark.parametrize(
    ("field", "value"),
    [("active_power_w", "NaN"), ("active_power_w", True), ("active_power_w", "12")],
)
def test_v1_garbage_values_are_absent(field: str, value: object) -> None:
    payload = load("v1_data_all_fields.json")
    payload[field] = float(value) if value == "NaN" else value
    assert field not in map_fields(payload, V1_FIELDS, BRUSSELS)


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("v[12]_data_*.json")))
def test_every_v1_data_fixture_maps_or_says_why(fixture: str) -> None:
    payload = load(fixture)
    try:
        sample = to_sample(payload, V1_FIELDS, BRUSSELS, POLLED)
    except UnusableReading:
        assert fixture == "v1_data_invalid_external_entries.json"
        return
    # every value the table maps is kept; no field outside the contract appears
    assert sample.model_validate_json(sample.model_dump_json()) == sample


@pytest.mark.parametrize("table", [V1_FIELDS, V2_FIELDS])
def test_table_targets_are_sample_fields(table: tuple[object, ...]) -> None:
    from p1_contracts.models import Sample

    targets = [row.target for row in table]  # type: ignore[attr-defined]
    assert set(targets) <= set(Sample.model_fields)
    assert len(targets) == len(set(targets))


def test_one_table_rows_name_contract_fields_once() -> None:
    from p1_contracts.models import Sample
    from p1_edge.meter.mapping import TABLE

    targets = [row.target for row in TABLE]
    assert len(targets) == len(set(targets))
    assert set(targets) <= set(Sample.model_fields)
    assert all(row.v1 or row.v2 for row in TABLE)


# --- the supported time range (p1_contracts.timerange): nothing ingest would refuse is spooled ---


@pytest.mark.parametrize(
    "polled",
    [
        datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC),  # a Pi without a clock, before NTP
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2100, 1, 1, tzinfo=UTC),  # the end is exclusive
    ],
)
def test_a_v1_reading_time_outside_the_range_makes_the_reading_unusable(polled: datetime) -> None:
    with pytest.raises(UnusableReading, match="2000-01-01"):
        to_sample(load("v1_data_all_fields.json"), V1_FIELDS, BRUSSELS, polled)


def test_the_range_ends_are_as_the_contract_says() -> None:
    first = to_sample(load("v1_data_all_fields.json"), V1_FIELDS, BRUSSELS, datetime(2000, 1, 1, tzinfo=UTC))
    assert first.ts == datetime(2000, 1, 1, tzinfo=UTC)
    last = datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert to_sample(load("v1_data_all_fields.json"), V1_FIELDS, BRUSSELS, last).ts == last


@pytest.mark.parametrize(
    "meter_time",
    [
        "1999-12-31T23:59:59",  # Brussels: 22:59:59Z, 1999
        "2100-01-01T01:00:00",  # Brussels: 2100-01-01T00:00:00Z, the exclusive end
        "0001-01-01T00:00:00",  # would overflow on the way to UTC
    ],
)
def test_a_v2_meter_time_outside_the_range_makes_the_reading_unusable(meter_time: str) -> None:
    payload = load("v2_measurement_3_phase_gas_water.json")
    payload["timestamp"] = meter_time
    with pytest.raises(UnusableReading, match="not between"):
        to_sample(payload, V2_FIELDS, BRUSSELS, POLLED)


def test_a_v2_meter_time_just_inside_the_range_is_kept() -> None:
    payload = load("v2_measurement_3_phase_gas_water.json")
    payload["timestamp"] = "2000-01-01T01:00:00"  # Brussels (+01:00): 2000-01-01T00:00:00Z exactly
    assert to_sample(payload, V2_FIELDS, BRUSSELS, POLLED).ts == datetime(2000, 1, 1, tzinfo=UTC)


def test_v1_auxiliary_times_outside_the_range_are_dropped_with_their_values() -> None:
    payload = load("v1_data_all_fields.json")
    payload["montly_power_peak_timestamp"] = 991231080010  # %y: 1999
    entries = payload["external"]
    assert isinstance(entries, list)
    for entry in entries:
        if entry["type"] == "gas_meter":
            entry["timestamp"] = 990606140010
    payload["gas_timestamp"] = 990606140010
    s = to_sample(payload, V1_FIELDS, BRUSSELS, POLLED)
    assert (s.month_peak_w, s.month_peak_ts) == (None, None)
    assert (s.gas_m3, s.gas_ts, s.gas_unique_id) == (None, None, None)
    # Everything else of the reading is kept, the water meter (dated 2021) included.
    assert (s.power_w, s.import_kwh, s.avg_power_15m_w) == (-543.0, 13779.338, 123.0)
    assert (s.water_m3, s.water_ts) == (444.444, local(2021, 6, 6, 14, 0, 10))


def test_v2_auxiliary_times_outside_the_range_are_dropped_with_their_values() -> None:
    payload = load("v2_measurement_3_phase_gas_water.json")
    payload["monthly_power_peak_timestamp"] = "2100-06-04T10:11:22"
    entries = payload["external"]
    assert isinstance(entries, list)
    for entry in entries:
        entry["timestamp"] = "1990-01-01T00:00:00"
    s = to_sample(payload, V2_FIELDS, BRUSSELS, POLLED)
    assert (s.month_peak_w, s.month_peak_ts) == (None, None)
    assert (s.gas_m3, s.gas_ts, s.water_m3, s.water_ts) == (None, None, None, None)
    assert s.ts == local(2024, 6, 28, 14, 12, 34)
    assert s.power_w is not None


@pytest.mark.parametrize("serial", ["4E47\x0047", "4E\n47", "\x7f", "a\x85b"])
def test_a_meter_identity_with_control_characters_is_left_out(serial: str) -> None:
    # The contract refuses control characters (PostgreSQL cannot store a NUL): such a meter is not
    # spooled, so no batch of it can be refused for it.
    payload = load("v1_data_all_fields.json")
    payload["unique_id"] = serial
    assert to_meter(payload) is None
