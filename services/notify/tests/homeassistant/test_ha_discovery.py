"""The Home Assistant payloads as data: topics, discovery configs, the state message (no broker)."""

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from p1_contracts.patterns import DEVICE_ID_PATTERN
from p1_notify.config import MqttConfig
from p1_notify.homeassistant import create_publisher
from p1_notify.homeassistant.discovery import (
    ENTITIES,
    HA_ID,
    DeviceState,
    Topics,
    configs,
    device_of_node,
    node_id,
    state_payload,
    unique_id,
)
from p1_notify.homeassistant.publisher import HomeAssistantPublisher
from p1_notify.homeassistant.state import device_state
from p1_schema.redis import LatestReading

TS = datetime(2026, 12, 2, 14, 7, 30, tzinfo=UTC)
TOPICS = Topics("homeassistant", "p1-telemetry")


def test_every_config_of_a_device_with_the_keys_home_assistant_needs() -> None:
    found = {topic: json.loads(payload) for topic, payload in configs(TOPICS, "meter-1")}
    assert set(found) == {
        "homeassistant/sensor/p1_meter-1/power_w/config",
        "homeassistant/sensor/p1_meter-1/import_kwh/config",
        "homeassistant/sensor/p1_meter-1/export_kwh/config",
        "homeassistant/sensor/p1_meter-1/kw_so_far/config",
        "homeassistant/sensor/p1_meter-1/projected_kw/config",
        "homeassistant/sensor/p1_meter-1/month_peak_kw/config",
        "homeassistant/sensor/p1_meter-1/rolling_12m_avg_kw/config",
        "homeassistant/binary_sensor/p1_meter-1/peak_warning/config",
    }
    energy = found["homeassistant/sensor/p1_meter-1/import_kwh/config"]
    assert energy["device_class"] == "energy"
    assert energy["state_class"] == "total_increasing"
    assert energy["unit_of_measurement"] == "kWh"
    assert energy["unique_id"] == "p1_meter-1_import_kwh"
    assert energy["state_topic"] == "p1-telemetry/p1_meter-1/state"
    assert energy["value_template"] == "{{ value_json.import_kwh }}"
    assert energy["availability_topic"] == "p1-telemetry/status"
    assert (energy["payload_available"], energy["payload_not_available"]) == ("online", "offline")
    assert energy["device"] == {
        "identifiers": ["p1_meter-1"],
        "name": "P1 meter meter-1",
        "manufacturer": "HomeWizard",
        "model": "P1 meter",
    }
    power = found["homeassistant/sensor/p1_meter-1/power_w/config"]
    assert (power["device_class"], power["state_class"], power["unit_of_measurement"]) == (
        "power",
        "measurement",
        "W",
    )
    for field in ("kw_so_far", "projected_kw", "month_peak_kw", "rolling_12m_avg_kw"):
        doc = found[f"homeassistant/sensor/p1_meter-1/{field}/config"]
        assert (doc["device_class"], doc["unit_of_measurement"]) == ("power", "kW"), field
    warning = found["homeassistant/binary_sensor/p1_meter-1/peak_warning/config"]
    assert (warning["device_class"], warning["payload_on"], warning["payload_off"]) == (
        "problem", "ON", "OFF")  # fmt: skip
    assert "unit_of_measurement" not in warning
    assert "state_class" not in warning
    # Figures of the moment expire when the device's readings stop; totals and peaks keep their value.
    expiring = {t.split("/")[-2] for t, doc in found.items() if doc.get("expire_after") == 600}
    assert expiring == {"power_w", "kw_so_far", "projected_kw", "peak_warning"}


def test_unique_ids_never_collide_across_devices() -> None:
    # p1_<device>_<field> is unique when no field ends with "_" + another field.
    fields = [entity.field for entity in ENTITIES]
    assert len(set(fields)) == len(fields)
    assert not [(a, b) for a in fields for b in fields if a != b and a.endswith("_" + b)]
    assert unique_id("a_power", ENTITIES[0]) != unique_id("a", ENTITIES[0])


@pytest.mark.parametrize(
    ("device_id", "node"),
    [("meter-1", "p1_meter-1"), ("home.p1", "p1_home_dp1"), ("a_b", "p1_a__b"), ("a.b", "p1_a_db")],
)
def test_a_device_id_as_a_topic_level_home_assistant_accepts(device_id: str, node: str) -> None:
    assert node_id(device_id) == node
    assert HA_ID.fullmatch(node)
    assert device_of_node(node) == device_id


@given(st.from_regex(DEVICE_ID_PATTERN, fullmatch=True), st.from_regex(DEVICE_ID_PATTERN, fullmatch=True))
def test_node_ids_are_valid_and_two_devices_never_share_one(a: str, b: str) -> None:
    assert HA_ID.fullmatch(node_id(a))
    assert device_of_node(node_id(a)) == a
    assert (node_id(a) == node_id(b)) == (a == b)


@pytest.mark.parametrize("bad", ["", "-x", "a/b", "a+b", "a#", "x" * 65, "dev\n"])
def test_a_text_that_is_no_device_id_gets_no_topic(bad: str) -> None:
    with pytest.raises(ValueError, match="not a device id"):
        TOPICS.state(bad)


@pytest.mark.parametrize("prefix", ["", "a/#", "a/+/b", "a//b", "/a", "a/"])
def test_a_prefix_with_wildcards_or_empty_levels_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match=r"mqtt\.discovery_prefix"):
        Topics(discovery_prefix=prefix)


def test_the_state_message_carries_every_entity_field() -> None:
    state = DeviceState(
        "meter-1",
        TS,
        power_w=2310.0,
        import_kwh=12345.678,
        export_kwh=321.5,
        kw_so_far=1.8,
        projected_kw=3.9,
        month_peak_kw=3.1,
        rolling_12m_avg_kw=2.95,
        peak_warning=True,
    )
    assert json.loads(state_payload(state)) == {
        "as_of": "2026-12-02T14:07:30Z",
        "power_w": 2310.0,
        "import_kwh": 12345.678,
        "export_kwh": 321.5,
        "kw_so_far": 1.8,
        "projected_kw": 3.9,
        "month_peak_kw": 3.1,
        "rolling_12m_avg_kw": 2.95,
        "peak_warning": "ON",
    }


def test_an_unknown_or_non_finite_figure_is_null_so_home_assistant_shows_unknown() -> None:
    doc = json.loads(state_payload(DeviceState("meter-1", TS, power_w=math.nan, import_kwh=math.inf)))
    assert [doc["power_w"], doc["import_kwh"], doc["kw_so_far"]] == [None, None, None]
    assert doc["peak_warning"] == "OFF"


@dataclass(frozen=True)
class Quarter:
    kw_so_far: float
    projected_kw: float
    month_peak_kw: float | None
    rolling_12m_avg_kw: float | None = None


def test_the_followers_reading_and_quarter_make_the_state() -> None:
    reading = LatestReading(TS, {"ts": TS, "power_w": 4200.0, "import_kwh": 100.25, "export_kwh": 7.5})
    state = device_state("meter-1", reading, Quarter(1.05, 4.2, 3.1, 2.8), True)
    assert state == DeviceState("meter-1", TS, 4200.0, 100.25, 7.5, 1.05, 4.2, 3.1, 2.8, True)
    # No quarter yet (the follower has not loaded it): the reading's figures, the quarter's unknown.
    bare = device_state("meter-1", reading, None, False)
    assert (bare.power_w, bare.kw_so_far, bare.month_peak_kw) == (4200.0, None, None)
    assert not bare.peak_warning


def test_notifys_config_makes_a_publisher_with_its_counters_on_metrics() -> None:
    registry = CollectorRegistry()
    publisher = create_publisher(MqttConfig("mqtt://ha:topsecret@broker:1884", "hass"), registry)
    assert isinstance(publisher, HomeAssistantPublisher)
    text = generate_latest(registry).decode()
    assert "p1_notify_mqtt_connected 0.0" in text
    assert "p1_notify_mqtt_states_total 0.0" in text
    assert "topsecret" not in text


@pytest.mark.parametrize(
    ("url", "prefix", "says"),
    [("http://broker", "homeassistant", "mqtt://"), ("mqtt://broker", "a//b", "discovery_prefix")],
)
def test_a_config_the_publisher_cannot_use_is_refused(url: str, prefix: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        create_publisher(MqttConfig(url, prefix), CollectorRegistry())
