"""What Home Assistant is told, as data: topics, discovery configs and the state payload (no I/O).

Home Assistant's MQTT discovery reads a retained JSON config on ``<prefix>/<component>/[<node_id>/]
<object_id>/config`` whose ids may hold only ``[a-zA-Z0-9_-]``. Each device gets one config per entity
(``<prefix>/sensor/<node_id>/<field>/config``) and ONE state topic, ``<topic_prefix>/<node_id>/state``,
carrying a JSON object that every entity reads one field of (``value_template: "{{ value_json.<field> }}"``):
a reading costs one message, not eight. Availability is the publisher's (one topic per connection, with the
client's last will ``offline``), so every entity of every device turns unavailable when p1-notify is gone.

Binding (users' dashboards, automations and Energy dashboard statistics follow these): the state fields,
the ``unique_id`` ``p1_<device_id>_<field>``, the device identifier ``p1_<device_id>``, the topics.
"""

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from p1_contracts.patterns import is_device_id
from p1_contracts.timeform import instant

ONLINE: Final = "online"
OFFLINE: Final = "offline"
# binary_sensor's defaults, written out: the state payload carries these texts, not JSON booleans (a
# template renders ``true`` as "True", which Home Assistant would not match).
ON: Final = "ON"
OFF: Final = "OFF"
DEFAULT_DISCOVERY_PREFIX: Final = "homeassistant"
DEFAULT_TOPIC_PREFIX: Final = "p1-telemetry"

# A topic level Home Assistant accepts as node or object id.
HA_ID: Final = re.compile(r"[a-zA-Z0-9_-]+")
# A prefix: one or more levels of MQTT topic text, no wildcards, no empty level.
_PREFIX: Final = re.compile(r"[^/#+\x00]+(/[^/#+\x00]+)*")

Component = Literal["sensor", "binary_sensor"]


@dataclass(frozen=True, slots=True)
class Entity:
    """One Home Assistant entity of a device: ``field`` is its state field, object id and unique id suffix."""

    field: str
    component: Component
    name: str
    device_class: str
    unit: str | None = None
    state_class: str | None = None
    precision: int | None = None
    live: bool = False  # a figure of the present moment: unavailable after EXPIRE_AFTER_S without a state


# A device whose readings stop (its edge offline) must not show its last power, or a warning, as if they
# held: Home Assistant makes such an entity unavailable after this long without a state. Totals and
# peaks stay true, so they keep their value.
EXPIRE_AFTER_S: Final = 600

# Energies are ``total_increasing`` in kWh: what Home Assistant's Energy dashboard takes ("Grid
# consumption" / "Return to grid"); a meter replacement (a counter that falls) starts a new cycle there.
# The quarter's figures and the peaks are demands, so kW and ``device_class: power``.
ENTITIES: Final[tuple[Entity, ...]] = (
    Entity("power_w", "sensor", "Power", "power", "W", "measurement", 0, live=True),
    Entity("import_kwh", "sensor", "Energy import", "energy", "kWh", "total_increasing", 3),
    Entity("export_kwh", "sensor", "Energy export", "energy", "kWh", "total_increasing", 3),
    Entity("kw_so_far", "sensor", "Quarter demand so far", "power", "kW", "measurement", 3, live=True),
    Entity("projected_kw", "sensor", "Quarter demand projected", "power", "kW", "measurement", 3, live=True),
    Entity("month_peak_kw", "sensor", "Month peak", "power", "kW", "measurement", 3),
    Entity("rolling_12m_avg_kw", "sensor", "12-month average peak", "power", "kW", "measurement", 3),
    Entity("peak_warning", "binary_sensor", "Peak warning", "problem", live=True),
)


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What one state message says about a device. ``None``: not known (no reading yet, no quarter, no
    completed month): Home Assistant shows it as unknown (a template rendering ``None``)."""

    device_id: str
    as_of: datetime
    power_w: float | None = None
    import_kwh: float | None = None
    export_kwh: float | None = None
    kw_so_far: float | None = None
    projected_kw: float | None = None
    month_peak_kw: float | None = None
    rolling_12m_avg_kw: float | None = None
    peak_warning: bool = False


@functools.lru_cache(maxsize=4096)  # called for every reading; a deployment has a bounded set of devices
def node_id(device_id: str) -> str:
    """The device's topic level: ``p1_`` + the id with ``_`` doubled and ``.`` written ``_d``.

    A device id may hold ``.``, which Home Assistant refuses in a topic id; mapping it to ``_`` alone would
    give ``a.b`` and ``a_b`` the same topics (one device's configs overwriting the other's). This escape
    is reversible (``_`` always starts a pair), so two devices never share a topic."""
    if not is_device_id(device_id):
        raise ValueError("not a device id (see p1_contracts.patterns)")
    return "p1_" + device_id.replace("_", "__").replace(".", "_d")


def device_of_node(node: str) -> str:
    """``node_id``'s inverse (for tools and tests reading topics back)."""
    if not node.startswith("p1_"):
        raise ValueError("not a p1 node id")
    out: list[str] = []
    chars = iter(node[3:])
    for char in chars:
        if char == "_":
            out.append({"_": "_", "d": "."}[next(chars)])
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic name, from the two prefixes (``mqtt.discovery_prefix``, ``mqtt.topic_prefix``)."""

    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX
    topic_prefix: str = DEFAULT_TOPIC_PREFIX

    def __post_init__(self) -> None:
        for name in ("discovery_prefix", "topic_prefix"):
            if not _PREFIX.fullmatch(getattr(self, name)):
                raise ValueError(f"mqtt.{name} must be MQTT topic levels without '#', '+' or empty levels")

    @property
    def availability(self) -> str:
        return f"{self.topic_prefix}/status"

    def state(self, device_id: str) -> str:
        return f"{self.topic_prefix}/{node_id(device_id)}/state"

    def config(self, device_id: str, entity: Entity) -> str:
        return f"{self.discovery_prefix}/{entity.component}/{node_id(device_id)}/{entity.field}/config"


def unique_id(device_id: str, entity: Entity) -> str:
    # Unique because no field ends with "_" + another field (a test holds it), and the device id is
    # written as is: Home Assistant allows any text in a unique id.
    return f"p1_{device_id}_{entity.field}"


def device_block(device_id: str) -> dict[str, object]:
    return {
        "identifiers": [f"p1_{device_id}"],
        "name": f"P1 meter {device_id}",
        "manufacturer": "HomeWizard",
        "model": "P1 meter",
    }


ORIGIN: Final[Mapping[str, str]] = {"name": "p1-telemetry"}


def config_payload(topics: Topics, device_id: str, entity: Entity) -> dict[str, object]:
    """The discovery config of one entity (published retained on ``topics.config``)."""
    doc: dict[str, object] = {
        "name": entity.name,
        "unique_id": unique_id(device_id, entity),
        "state_topic": topics.state(device_id),
        "value_template": "{{ value_json.%s }}" % entity.field,  # noqa: UP031 (Jinja braces)
        "device_class": entity.device_class,
        "availability_topic": topics.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device_block(device_id),
        "origin": dict(ORIGIN),
    }
    if entity.component == "binary_sensor":
        doc["payload_on"], doc["payload_off"] = ON, OFF
    if entity.unit is not None:
        doc["unit_of_measurement"] = entity.unit
    if entity.state_class is not None:
        doc["state_class"] = entity.state_class
    if entity.precision is not None:
        doc["suggested_display_precision"] = entity.precision
    if entity.live:
        doc["expire_after"] = EXPIRE_AFTER_S
    return doc


def configs(topics: Topics, device_id: str) -> list[tuple[str, bytes]]:
    """(topic, payload) of every discovery config of a device, in ``ENTITIES`` order."""
    return [
        (topics.config(device_id, entity), _json(config_payload(topics, device_id, entity)))
        for entity in ENTITIES
    ]


def state_payload(state: DeviceState) -> bytes:
    doc: dict[str, object] = {"as_of": instant(state.as_of)}
    for entity in ENTITIES:
        value = getattr(state, entity.field)
        if entity.component == "binary_sensor":
            doc[entity.field] = ON if value else OFF
        else:
            # A NaN or infinity is no figure: unknown, rather than invalid JSON Home Assistant would drop.
            doc[entity.field] = value if value is None or math.isfinite(value) else None
    return _json(doc)


def _json(doc: Mapping[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
