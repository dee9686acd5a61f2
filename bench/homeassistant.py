"""Home Assistant publisher benchmark (issue 16, point 3): what p1-notify's MQTT publisher costs under the
issue's load, against the real Mosquitto on 127.0.0.1:1883.

The load: ``--devices`` (2,000) devices, each uploading a batch of 5 readings (1 Hz) every 5 s, phases
spread over the period, handed to the publisher as the follower does (one ``publish()`` per reading).
Three runs in one process, one after the other:

0. the load alone, ``publish()`` going to a publisher that does nothing: the load's own CPU;
1. the load into the real publisher for ``--seconds``: its CPU minus run 0's is the publisher's, reported
   as % of one core and per message sent; also messages sent and states coalesced, and the p99 and
   longest ``publish()`` call (how long the follower is held), each as a ratio to run 0's, whose
   ``publish()`` does nothing (so what is left is the machine's own noise);
2. the baseline: a bare paho-mqtt client (the library under aiomqtt) publishing as many of the same state
   messages as run 1 sent, as fast as it can. Ratio: the publisher's CPU per state over paho's per message,
   i.e. what the throttle, the scheduling and asyncio add to the MQTT client itself.

Topics live under a prefix of the run's own, and every retained message is cleared afterwards. Only
127.0.0.1 is contacted. Every loop is bounded by a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from p1_notify.homeassistant.broker import parse_url
from p1_notify.homeassistant.discovery import ENTITIES, DeviceState, Topics, state_payload
from p1_notify.homeassistant.publisher import HomeAssistantPublisher
from p1_schema.redis import LatestReading

HOST, PORT = "127.0.0.1", 1883
PERIOD_S = 5.0
BATCH = 5


@dataclass
class Run:
    cpu_s: float
    wall_s: float
    readings: int
    calls_s: list[float]  # every publish() call's duration, sorted
    messages: int  # sent by the publisher while measured


class NullPublisher:
    async def publish(self, device_id: str, reading: LatestReading, quarter: None, warning: bool) -> None:
        return None


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def sent(publisher: HomeAssistantPublisher | NullPublisher) -> int:
    """Messages the publisher has sent so far."""
    if isinstance(publisher, NullPublisher):
        return 0
    return publisher.stats.states_sent + publisher.stats.configs_sent


async def load(
    publisher: HomeAssistantPublisher | NullPublisher, devices: int, seconds: float, warmup_s: float
) -> Run:
    """Each device's batch of 5 readings every PERIOD_S, phases spread evenly, for ``warmup_s`` (not
    measured: every device's first state and configs) and then ``seconds`` (measured)."""
    ids = [f"bench-{n}" for n in range(devices)]
    power = [100.0 + n % 3000 for n in range(devices)]
    start_wall = time.monotonic()
    calls: list[float] = []
    readings, slot = 0, 0
    ticks_per_period = 50  # a tick every 0.1 s; device n uploads in tick n % 50
    measured_from = start_wall + warmup_s
    deadline = measured_from + seconds
    start_cpu, sent_before = None, 0
    while (now := time.monotonic()) < deadline:
        if start_cpu is None and now >= measured_from:
            start_cpu, measured_wall, readings = time.process_time(), now, 0
            calls.clear()
            sent_before = sent(publisher)
        tick = slot % ticks_per_period
        ts = datetime.now(UTC)
        for n in range(tick, devices, ticks_per_period):
            for k in range(BATCH):
                reading = LatestReading(ts, {"power_w": power[n] + k, "import_kwh": 1000.0 + slot})
                called = time.perf_counter()
                await publisher.publish(ids[n], reading, None, False)
                calls.append(time.perf_counter() - called)
                readings += 1
        slot += 1
        await asyncio.sleep(max(0.0, start_wall + slot * PERIOD_S / ticks_per_period - now))
    assert start_cpu is not None
    cpu, wall = time.process_time() - start_cpu, time.monotonic() - measured_wall
    return Run(cpu, wall, readings, sorted(calls), sent(publisher) - sent_before)


def paho_baseline(topics: Topics, devices: int, messages: int) -> float:
    """CPU seconds of a bare paho client publishing ``messages`` state messages (QoS 0, retained)."""
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.connect(HOST, PORT)
    client.loop_start()
    try:
        payloads = [
            (topics.state(f"bench-{n}"), state_payload(DeviceState(f"bench-{n}", datetime.now(UTC), 1.0 * n)))
            for n in range(devices)
        ]
        started = time.process_time()
        info = None
        for i in range(messages):
            topic, payload = payloads[i % devices]
            info = client.publish(topic, payload, qos=0, retain=True)
        if info is not None:
            info.wait_for_publish(timeout=60)
        return time.process_time() - started
    finally:
        client.loop_stop()
        client.disconnect()


async def clear(topics: Topics, devices: int) -> None:
    names = [topics.availability]
    for n in range(devices):
        device = f"bench-{n}"
        names.append(topics.state(device))
        names += [topics.config(device, entity) for entity in ENTITIES]
    quiet = logging.getLogger("bench.clear")
    quiet.setLevel(logging.ERROR)  # aiomqtt warns of more than 10 publishes awaited at once
    async with aiomqtt.Client(HOST, PORT, logger=quiet) as client:
        for i in range(0, len(names), 500):
            await asyncio.gather(*(client.publish(t, b"", qos=1, retain=True) for t in names[i : i + 500]))


async def main_async(args: argparse.Namespace) -> None:
    root = f"bench-{uuid.uuid4().hex[:12]}"
    topics = Topics(f"{root}/ha", f"{root}/p1")
    try:
        idle = await load(NullPublisher(), args.devices, args.seconds, 0.0)
        publisher = HomeAssistantPublisher(parse_url(f"mqtt://{HOST}:{PORT}"), topics)
        async with publisher:
            stats = publisher.stats
            busy = await load(publisher, args.devices, args.seconds, PERIOD_S + 1.0)
        base_cpu = await asyncio.to_thread(paho_baseline, topics, args.devices, busy.messages)
    finally:
        await clear(topics, args.devices)
    own_cpu = busy.cpu_s - idle.cpu_s * busy.wall_s / idle.wall_s
    per_message = own_cpu / max(busy.messages, 1)
    paho_per_message = base_cpu / max(busy.messages, 1)
    row = {
        "devices": args.devices,
        "measured_s": round(busy.wall_s, 1),
        "readings_per_s": round(busy.readings / busy.wall_s),
        "messages_per_s": round(busy.messages / busy.wall_s),
        "coalesced_total": stats.coalesced,
        "load_alone_core_pct": round(100 * idle.cpu_s / idle.wall_s, 1),
        "publisher_core_pct": round(100 * own_cpu / busy.wall_s, 1),
        "publisher_us_per_message": round(per_message * 1e6, 1),
        "paho_us_per_message": round(paho_per_message * 1e6, 1),
        "ratio_to_paho": round(per_message / paho_per_message, 2) if paho_per_message else None,
        "publish_call_p50_us": round(quantile(busy.calls_s, 0.5) * 1e6, 1),
        "publish_call_p99_us": round(quantile(busy.calls_s, 0.99) * 1e6, 1),
        "publish_call_p99_ratio_to_load_alone": round(
            quantile(busy.calls_s, 0.99) / quantile(idle.calls_s, 0.99), 1
        ),
        "publish_call_max_ms": round(busy.calls_s[-1] * 1e3, 2),
        "publish_call_max_ratio_to_load_alone": round(busy.calls_s[-1] / idle.calls_s[-1], 1),
    }
    print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
