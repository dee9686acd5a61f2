"""The hook through which the follower hands every new reading of a configured device to a state
publisher (Home Assistant over MQTT: ``p1_notify.homeassistant``), so that notify follows readings once.

The publisher is optional (the config's ``mqtt:``); notify never depends on it for its warnings."""

from typing import Protocol

from p1_peakguard.quarter import QuarterNow
from p1_schema.redis import LatestReading


class StatePublisher(Protocol):
    async def start(self) -> None:
        """Connect (and keep reconnecting) in the background; never raises when the broker is down."""

    async def stop(self) -> None:
        """Say offline (availability) and disconnect."""

    async def publish(
        self, device_id: str, reading: LatestReading, quarter: QuarterNow | None, warning: bool
    ) -> None:
        """Called for every new reading of a configured device (about one a second each), in order.
        Must not block for long nor raise: the publisher limits and queues on its own."""
