"""Home Assistant over MQTT: discovery configs and states for every followed device.

- ``discovery``: the pure part — topic names, the discovery configs (one per entity, retained) and the
  state payload (one JSON object per device). Binding: Home Assistant's entities and users' automations
  read these names.
- ``broker``: the ``mqtt.url`` setting read into a broker address (password kept out of every text).
- ``publisher``: the MQTT client (aiomqtt) that publishes them, throttled, reconnecting, never blocking
  the caller.
"""

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from p1_notify.homeassistant.broker import parse_url
from p1_notify.homeassistant.discovery import Topics
from p1_notify.homeassistant.metrics import PublisherCollector
from p1_notify.homeassistant.publisher import HomeAssistantPublisher

if TYPE_CHECKING:
    # Types only: notify's config module loads Apprise (~2 s), which a publisher alone (the last-will
    # test's process) has no use for.
    from p1_notify.config import MqttConfig
    from p1_notify.publish import StatePublisher


def create_publisher(config: "MqttConfig", registry: CollectorRegistry) -> "StatePublisher":
    """The publisher of the config's ``mqtt:`` (notify's ``StatePublisher``), its counters in ``registry``.
    ValueError for a URL or prefix it cannot use (the message never quotes the URL)."""
    topics = Topics(config.discovery_prefix, config.topic_prefix)
    publisher = HomeAssistantPublisher(parse_url(config.url), topics)
    registry.register(PublisherCollector(publisher))
    return publisher  # mypy holds that it is a StatePublisher (the follower's protocol)
