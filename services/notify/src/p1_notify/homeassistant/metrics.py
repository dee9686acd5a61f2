"""The publisher's counters on notify's ``/metrics`` (read from its ``Stats`` at each scrape)."""

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from p1_notify.homeassistant.publisher import HomeAssistantPublisher


class PublisherCollector(Collector):
    def __init__(self, publisher: HomeAssistantPublisher) -> None:
        self._publisher = publisher

    def collect(self) -> Iterator[Metric]:
        stats = self._publisher.stats
        yield GaugeMetricFamily(
            "p1_notify_mqtt_connected",
            "1 while connected to the MQTT broker.",
            int(self._publisher.connected),
        )
        for name, value, text in (
            ("connects", stats.connects, "Connections made to the MQTT broker."),
            ("connect_failures", stats.connect_failures, "Connections that failed or were lost."),
            ("configs", stats.configs_sent, "Home Assistant discovery configs published."),
            ("states", stats.states_sent, "Device states published."),
            ("states_coalesced", stats.coalesced, "States replaced by a newer one before being sent."),
            ("refused", stats.refused, "States not taken (a device id no topic can carry)."),
        ):
            yield CounterMetricFamily(f"p1_notify_mqtt_{name}", text, value)
