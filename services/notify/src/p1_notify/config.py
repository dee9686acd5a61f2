"""The notification config file (``NOTIFY_CONFIG``, YAML), parsed into typed values.

Binding layout::

    defaults: {urls: [<apprise url>, …], cap_kw: <optional kW>}
    devices:
      <device_id>: {urls: [<apprise url>, …], cap_kw: <optional kW>}
    mqtt: {url: mqtt://host:1883, discovery_prefix: homeassistant, topic_prefix: p1-telemetry}

A device's ``urls`` and ``cap_kw`` fall back to ``defaults`` when it gives none. Only the listed devices
are followed. A bad file is a :class:`ConfigFileError` naming the line (never quoting a value: a URL
may hold a token).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from p1_contracts.patterns import DEVICE_ID_PATTERN
from p1_notify.channels import channel


def _apprise_url(url: str) -> str:
    if channel(url) is None:
        raise ValueError("not an Apprise URL that Apprise can use (unknown scheme or missing parts)")
    return url


Url = Annotated[str, StringConstraints(min_length=3, max_length=2048)]
# MQTT topic levels of letters, digits, '_' and '-', joined by single '/' (no wildcard, no empty level).
Topic = Annotated[str, StringConstraints(max_length=100, pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")]
AppriseUrl = Annotated[Url, AfterValidator(_apprise_url)]


class _Device(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    urls: list[AppriseUrl] | None = None
    cap_kw: Annotated[float, Field(gt=0, le=1000, strict=False)] | None = None


class _Mqtt(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: Url
    discovery_prefix: Topic = "homeassistant"
    topic_prefix: Topic = "p1-telemetry"


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    defaults: _Device = _Device()
    devices: dict[Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)], _Device | None] = {}
    mqtt: _Mqtt | None = None


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    urls: tuple[str, ...]
    cap_kw: float | None


@dataclass(frozen=True, slots=True)
class MqttConfig:
    url: str
    discovery_prefix: str = "homeassistant"
    topic_prefix: str = "p1-telemetry"


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    devices: dict[str, DeviceConfig]
    mqtt: MqttConfig | None = None


class ConfigFileError(Exception):
    """The config file cannot be read or does not have the binding layout; the message names the line."""


def load_config(path: Path) -> NotifyConfig:
    name = f"NOTIFY_CONFIG ({path})"  # the variable first: that is what a user sets
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{name}: cannot read ({type(exc).__name__})") from None
    return parse_config(text, name)


def parse_config(text: str, name: str = "NOTIFY_CONFIG") -> NotifyConfig:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise ConfigFileError(f"{name}: {where}: not valid YAML ({exc.problem or 'syntax'})") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{name}: not valid YAML ({type(exc).__name__})") from None
    if data is None:
        data = {}
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(_describe(exc, root, name)) from None
    return _resolve(parsed)


def _resolve(parsed: _File) -> NotifyConfig:
    devices = {}
    for device_id, given in parsed.devices.items():
        own = given or _Device()
        urls = own.urls if own.urls is not None else (parsed.defaults.urls or [])
        cap = own.cap_kw if own.cap_kw is not None else parsed.defaults.cap_kw
        devices[device_id] = DeviceConfig(tuple(urls), cap)
    mqtt = None
    if parsed.mqtt is not None:
        mqtt = MqttConfig(parsed.mqtt.url, parsed.mqtt.discovery_prefix, parsed.mqtt.topic_prefix)
    return NotifyConfig(devices, mqtt)


def _describe(exc: ValidationError, root: yaml.Node | None, name: str) -> str:
    """One clause per problem: ``line N: devices.dev1.cap_kw: <what is wrong>``, values never quoted."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "constrained-"))]
        loc = [p for p in loc if p != "[key]"]
        line = _line_of(root, [p for p in err["loc"] if isinstance(p, str | int)])
        where = f"line {line}: " if line else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}{'.'.join(loc) or 'the file'}: {msg}")
    return f"{name}: " + "; ".join(lines)


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the deepest node of ``loc`` that exists in the YAML tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            key = next((k for k, _ in node.value if getattr(k, "value", None) == str(part)), None)
            if found is None:
                break
            node, line = found, (key.start_mark.line + 1 if key is not None else line)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
