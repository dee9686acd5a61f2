"""The publisher against the real Mosquitto on 127.0.0.1:1883. Each test has its own topic prefixes
(``test-<uuid>/ha`` for discovery, ``test-<uuid>/p1`` for states) and clears what it retained."""

import asyncio
import itertools
import json
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest
from ha_testkit import HOST, PORT, Recorder, Relay, clear_retained, recording

from p1_notify.homeassistant.broker import parse_url
from p1_notify.homeassistant.discovery import ENTITIES, HA_ID, DeviceState, Topics
from p1_notify.homeassistant.publisher import HomeAssistantPublisher
from p1_schema.redis import LatestReading

TS = datetime(2026, 12, 2, 14, 7, 30, tzinfo=UTC)
# The keys every sensor config must have for Home Assistant to make a usable entity of it.
SENSOR_KEYS = {"name", "unique_id", "state_topic", "value_template", "device_class", "availability_topic",
               "payload_available", "payload_not_available", "device"}  # fmt: skip


@dataclass
class Scene:
    topics: Topics
    recorder: Recorder

    def publisher(self, url: str = f"mqtt://{HOST}:{PORT}") -> HomeAssistantPublisher:
        # Short backoff: the reconnect test would otherwise wait a second.
        return HomeAssistantPublisher(
            parse_url(url), self.topics, backoff_s=(0.05, 0.2), publish_timeout_s=2.0
        )

    def states(self, device_id: str) -> list[dict[str, object]]:
        return [json.loads(m.payload) for m in self.recorder.on(self.topics.state(device_id)) if m.payload]

    def availability(self) -> list[bytes]:
        return [m.payload for m in self.recorder.on(self.topics.availability)]


@pytest.fixture
async def scene() -> AsyncIterator[Scene]:
    root = f"test-{uuid.uuid4().hex}"
    async with recording(root) as recorder:
        try:
            yield Scene(Topics(f"{root}/ha", f"{root}/p1"), recorder)
        finally:
            await clear_retained({m.topic for m in recorder.messages})


async def retained(prefix: str, count: int) -> dict[str, bytes]:
    """What a client subscribing now gets of ``prefix/#`` as retained messages (Home Assistant at start)."""
    async with recording(prefix) as late:
        await late.until(lambda: len(late.messages) >= count)
        assert all(m.retain for m in late.messages)
        return {m.topic: m.payload for m in late.messages}


async def test_configs_and_states_are_retained_for_home_assistant(scene: Scene) -> None:
    device = "home.p1-a"  # a '.' that no Home Assistant topic id may hold
    async with scene.publisher() as publisher:
        reading = LatestReading(TS, {"ts": TS, "power_w": 2310.0, "import_kwh": 12345.678, "export_kwh": 9.5})
        await publisher.publish(device, reading, None, True)
        await scene.recorder.until(lambda: bool(scene.states(device)))

        root = scene.topics.topic_prefix.rsplit("/", 1)[0]
        found = await retained(root, 10)  # 8 configs, the state, the availability
    configs = {t: json.loads(p) for t, p in found.items() if t.endswith("/config")}
    assert len(configs) == 8
    for topic, doc in configs.items():
        levels = topic.split("/")
        assert levels[-4] in ("sensor", "binary_sensor"), topic
        assert levels[-3] == "p1_home_dp1-a", topic
        assert all(HA_ID.fullmatch(level) for level in levels[-3:-1]), topic
        assert set(doc) >= SENSOR_KEYS, topic
        assert doc["state_topic"] == scene.topics.state(device)
        assert doc["availability_topic"] == scene.topics.availability
        assert doc["unique_id"].startswith("p1_home.p1-a_")
    energy = configs[scene.topics.config(device, next(e for e in ENTITIES if e.field == "export_kwh"))]
    assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
        "energy", "total_increasing", "kWh")  # fmt: skip
    assert found[scene.topics.availability] == b"online"
    state = json.loads(found[scene.topics.state(device)])
    assert state == {"as_of": "2026-12-02T14:07:30Z", "power_w": 2310.0, "import_kwh": 12345.678,
                     "export_kwh": 9.5, "kw_so_far": None, "projected_kw": None, "month_peak_kw": None,
                     "rolling_12m_avg_kw": None, "peak_warning": "ON"}  # fmt: skip


async def test_a_burst_of_states_leaves_at_most_one_a_second_and_the_newest_last(scene: Scene) -> None:
    device = "meter-1"
    async with scene.publisher() as publisher:
        # 20 updates over 1.9 s (paced: this is the load, not a wait for something).
        for i in range(20):
            publisher.offer(DeviceState(device, TS, power_w=float(i)))
            await asyncio.sleep(0.1)
        await scene.recorder.until(lambda: any(s["power_w"] == 19.0 for s in scene.states(device)))
        states = scene.recorder.on(scene.topics.state(device))
        configs = [m for m in scene.recorder.messages if m.topic.endswith("/config")]
    # Sent at about 0 s, 1 s and 2 s: the first, then the newest each second (19 after the last offer).
    assert [json.loads(m.payload)["power_w"] for m in states][-1] == 19.0
    assert len(states) <= 3
    gaps = [b.at - a.at for a, b in itertools.pairwise(states)]
    assert all(gap >= 0.9 for gap in gaps), gaps  # 1 s at the sender; arrival jitter allowed
    assert publisher.stats.coalesced >= 20 - 3
    assert len(configs) == 8  # once per device per connection, not per state


async def test_a_clean_stop_says_offline(scene: Scene) -> None:
    async with scene.publisher() as publisher:
        publisher.offer(DeviceState("meter-1", TS, power_w=1.0))
        await scene.recorder.until(lambda: bool(scene.states("meter-1")))
    assert scene.availability() == [b"online", b"offline"]


async def test_a_killed_publisher_turns_offline_by_its_last_will(scene: Scene) -> None:
    script = Path(__file__).with_name("ha_publisher_proc.py")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), scene.topics.discovery_prefix, scene.topics.topic_prefix, "meter-1",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 15) == b"ready\n"
        assert scene.availability() == [b"online"]
    finally:
        proc.kill()  # SIGKILL: no goodbye, the broker sends the will
        await proc.wait()
    await scene.recorder.until(lambda: scene.availability() == [b"online", b"offline"])
    found = await retained(scene.topics.availability, 1)
    assert found == {scene.topics.availability: b"offline"}


async def test_with_two_replicas_the_survivor_says_online_again(scene: Scene) -> None:
    survivor = HomeAssistantPublisher(parse_url(f"mqtt://{HOST}:{PORT}"), scene.topics, online_refresh_s=0.3)
    async with survivor:
        script = Path(__file__).with_name("ha_publisher_proc.py")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), scene.topics.discovery_prefix, scene.topics.topic_prefix, "meter-1",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.readline(), 15) == b"ready\n"
        finally:
            proc.kill()
            await proc.wait()
        await scene.recorder.until(lambda: b"offline" in scene.availability())
        # The will said offline; the survivor's next refresh (≤ 0.3 s) says online again.
        await scene.recorder.until(lambda: scene.availability()[-1] == b"online")
        assert survivor.connected


async def test_a_lost_link_is_reconnected_and_home_assistant_told_again(scene: Scene) -> None:
    async with Relay() as relay, scene.publisher(f"mqtt://{HOST}:{relay.port}") as publisher:
        publisher.offer(DeviceState("meter-1", TS, power_w=1.0))
        await scene.recorder.until(lambda: len(scene.states("meter-1")) == 1)
        relay.cut()
        # The will (the broker saw the link go), then the publisher's own "online" once reconnected.
        await scene.recorder.until(lambda: scene.availability() == [b"online", b"offline"])
        publisher.offer(DeviceState("meter-1", TS, power_w=2.0))
        await scene.recorder.until(lambda: [s["power_w"] for s in scene.states("meter-1")][-1:] == [2.0])
        # (1.0 once more before it would be right too: the newest state goes again on a new link.)
        assert {s["power_w"] for s in scene.states("meter-1")} == {1.0, 2.0}
        assert scene.availability() == [b"online", b"offline", b"online"]
        assert publisher.stats.connects == 2
    configs = [m for m in scene.recorder.messages if m.topic.endswith("/config")]
    assert len(configs) == 16  # announced again on the new connection (a broker may have lost them)


async def test_a_broker_that_takes_nothing_more_is_left_and_reconnected(scene: Scene) -> None:
    topics = scene.topics
    async with Relay() as relay:
        url = parse_url(f"mqtt://{HOST}:{relay.port}")
        publisher = HomeAssistantPublisher(
            url, topics, backoff_s=(0.05, 0.2), publish_timeout_s=0.5, online_refresh_s=0.2
        )
        async with publisher:
            await _until(lambda: publisher.connected)
            relay.stall()
            # The state goes into the stalled link and is lost there (QoS 0); the next "online" (QoS 1)
            # is never acknowledged: after 0.5 s the link is given up, and the next one (not stalled)
            # carries the device's newest state again.
            publisher.offer(DeviceState("meter-1", TS, power_w=7.0))
            await scene.recorder.until(lambda: [s["power_w"] for s in scene.states("meter-1")] == [7.0])
            assert publisher.stats.connects == 2
            assert publisher.stats.connect_failures >= 1


async def test_a_broker_that_is_down_never_holds_up_the_caller(scene: Scene) -> None:
    async with Relay() as relay:
        port = relay.port
    # Nothing listens on ``port`` now: every connect fails, and the caller goes on regardless.
    publisher = scene.publisher(f"mqtt://u:topsecret@{HOST}:{port}")
    await publisher.start()
    try:
        for i in range(1000):
            await publisher.publish(f"meter-{i % 10}", LatestReading(TS, {"power_w": float(i)}), None, False)
        await publisher.publish("not a device id!", LatestReading(TS, {}), None, False)  # never raises
        await _until(lambda: publisher.stats.connect_failures >= 2)
        assert publisher.stats.coalesced == 990  # one pending state per device: memory bounded by devices
        assert publisher.stats.refused == 1
        assert not publisher.connected
    finally:
        await publisher.stop()


async def _until(check: Callable[[], bool], within: float = 5.0) -> None:
    """Polls ``check`` until it holds; fails after ``within`` s."""
    for _ in range(int(within / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within the deadline")


async def test_password_is_not_logged(scene: Scene, caplog: pytest.LogCaptureFixture) -> None:
    publisher = scene.publisher(f"mqtt://ha:topsecret@{HOST}:1")
    await publisher.start()
    try:
        await _until(lambda: publisher.stats.connect_failures >= 1)
    finally:
        await publisher.stop()
    logged = [(r.getMessage(), getattr(r, "broker", ""), getattr(r, "error", "")) for r in caplog.records]
    assert any(broker == "mqtt://ha@127.0.0.1:1" for _, broker, _ in logged), logged
    assert "topsecret" not in repr(logged)
    assert "topsecret" not in caplog.text


async def test_aiomqtt_sees_the_same_broker() -> None:
    # Guard: the tests need the machine's Mosquitto; fail plainly if it is not there.
    async with aiomqtt.Client(HOST, PORT, timeout=2) as client:
        await client.publish(f"test-{uuid.uuid4().hex}/probe", b"", qos=1)
