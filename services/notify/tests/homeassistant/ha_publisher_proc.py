"""A publisher in a process of its own, for the last-will test: publishes one state, prints ``ready`` once
the broker has it, then runs until killed. Arguments: discovery prefix, topic prefix, device id."""

import asyncio
import sys
from datetime import UTC, datetime

from p1_notify.homeassistant.broker import parse_url
from p1_notify.homeassistant.discovery import DeviceState, Topics
from p1_notify.homeassistant.publisher import HomeAssistantPublisher


async def main(discovery_prefix: str, topic_prefix: str, device_id: str) -> None:
    topics = Topics(discovery_prefix, topic_prefix)
    publisher = HomeAssistantPublisher(parse_url("mqtt://127.0.0.1:1883"), topics)
    await publisher.start()
    publisher.offer(DeviceState(device_id, datetime.now(UTC), power_w=1.0))
    for _ in range(500):  # bounded: 5 s
        if publisher.stats.states_sent:
            print("ready", flush=True)
            break
        await asyncio.sleep(0.01)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
