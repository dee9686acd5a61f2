"""The config file: the binding layout, defaults, and errors that name the line without quoting a value."""

from pathlib import Path

import pytest

from p1_notify.config import ConfigFileError, DeviceConfig, MqttConfig, load_config, parse_config

GOOD = """\
defaults:
  urls: ["json://127.0.0.1:9/hook"]
  cap_kw: 4
devices:
  dev-a:
  dev-b: {urls: ["ntfy://127.0.0.1:9/topic"], cap_kw: 6.5}
mqtt: {url: "mqtt://127.0.0.1:1883"}
"""


def test_a_device_takes_the_defaults_it_does_not_set() -> None:
    config = parse_config(GOOD)
    assert config.devices == {
        "dev-a": DeviceConfig(("json://127.0.0.1:9/hook",), 4.0),
        "dev-b": DeviceConfig(("ntfy://127.0.0.1:9/topic",), 6.5),
    }
    assert config.mqtt == MqttConfig("mqtt://127.0.0.1:1883", "homeassistant", "p1-telemetry")


def test_an_empty_file_follows_no_device() -> None:
    assert parse_config("").devices == {}


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("devices:\n  dev-a:\n    cap_kw: -3\n", 3, "devices.dev-a.cap_kw"),
        (
            "devices:\n  dev-a:\n    urls:\n      - json://127.0.0.1:9/\n      - 5\n",
            5,
            "devices.dev-a.urls.1",
        ),
        ("devices:\n  dev-a:\n    urls: ['nosuch://secret-token@host/']\n", 3, "devices.dev-a.urls.0"),
        ("devices: [\n", 2, "not valid YAML"),
        ("defaults: {}\nsurprise: 1\n", 2, "surprise"),
        ("devices:\n  'bad id!':\n", 2, "devices.bad id!"),
        ("mqtt: {discovery_prefix: ha}\n", 1, "mqtt.url"),
        ("mqtt:\n  url: mqtt://127.0.0.1:1883\n  discovery_prefix: a//b\n", 3, "mqtt.discovery_prefix"),
    ],
)
def test_a_bad_file_is_refused_naming_the_line(text: str, line: int, what: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text)
    message = str(caught.value)
    assert f"line {line}:" in message
    assert what in message
    assert "secret-token" not in message


def test_an_unreadable_file_is_a_config_error_naming_the_variable(tmp_path: Path) -> None:
    absent = tmp_path / "absent.yaml"
    with pytest.raises(ConfigFileError) as raised:
        load_config(absent)
    assert str(raised.value) == f"NOTIFY_CONFIG ({absent}): cannot read (FileNotFoundError)"


def test_a_bad_file_names_the_variable_and_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices:\n  demo:\n    cap_kw: -3\n")
    with pytest.raises(ConfigFileError) as raised:
        load_config(bad)
    assert str(raised.value).startswith(f"NOTIFY_CONFIG ({bad}): line 3: devices.demo.cap_kw:")
