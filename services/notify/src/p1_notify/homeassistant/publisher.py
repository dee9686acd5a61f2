"""The MQTT client that keeps Home Assistant current: discovery configs, states, availability.

The caller (the follower) hands over states with ``publish``, which never waits: it records the state as
the device's newest and returns. One task owns the connection and sends:

- on each connection: availability ``online`` (retained; the client's last will, set at connect, is
  ``offline`` retained, so a killed process or a lost link turns every entity unavailable); then each
  device's newest state again (what went into the previous link may have died with it), and per device,
  before its first state on that connection, its discovery configs (retained): a broker that restarted
  without persistence gets them again;
- ``online`` again every ``online_refresh_s`` (30 s): with two replicas, the will of one that died is
  overridden by the other within that time; and an idle link that died is noticed by then;
- states and configs (retained, QoS 0: what is lost with a link goes again on the next, so QoS 1 would
  only add a round trip per message) at most once per ``min_interval_s`` per device: a state that arrives
  sooner waits, and a newer one replaces it (the newest is sent; the ones in between are dropped, counted
  in ``stats.coalesced``); due messages are handed to the client ``BURST`` at a time;
- a broker that is down, refuses us or does not take a message within ``publish_timeout_s`` (one
  deadline, moved forward before each burst) is left and reconnected with exponential backoff
  (``backoff_s``: first and longest wait, jittered). Meanwhile states keep coalescing, one per device:
  memory is bounded by the number of devices and the follower never stalls; what is lost is only
  intermediate states, never the newest;
- ``stop`` publishes ``offline`` (a clean disconnect does not fire the will) and disconnects.
"""

import asyncio
import contextlib
import heapq
import logging
import math
import random
import secrets
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

import aiomqtt

from p1_config.redact import describe_error
from p1_notify.homeassistant.broker import Broker
from p1_notify.homeassistant.discovery import OFFLINE, ONLINE, DeviceState, Topics, configs, state_payload
from p1_notify.homeassistant.state import QuarterFigures, Reading, device_state

log = logging.getLogger(__name__)

KEEPALIVE_S: Final = 30
# Messages handed to the client at once; aiomqtt warns of more than 10 publishes awaited together.
BURST: Final = 10


@dataclass(slots=True)
class Stats:
    connects: int = 0
    connect_failures: int = 0
    configs_sent: int = 0
    states_sent: int = 0
    coalesced: int = 0
    refused: int = 0


class HomeAssistantPublisher:
    """Publishes ``DeviceState``s for Home Assistant (the follower's ``StatePublisher``)."""

    def __init__(
        self,
        broker: Broker,
        topics: Topics,
        *,
        min_interval_s: float = 1.0,
        backoff_s: tuple[float, float] = (1.0, 30.0),
        publish_timeout_s: float = 5.0,
        online_refresh_s: float = 30.0,
    ) -> None:
        self._broker = broker
        self._topics = topics
        self._interval = min_interval_s
        self._backoff = backoff_s
        self._timeout = publish_timeout_s
        self._online_refresh = online_refresh_s
        self._online_due = 0.0
        self._identifier = f"p1-notify-{secrets.token_hex(6)}"
        self.stats = Stats()
        self.connected = False
        # The newest unsent state per device; a device is in exactly one of _ready (due now, FIFO) and
        # _later (due at a time, a heap) while it has one.
        self._pending: dict[str, DeviceState] = {}
        self._ready: deque[str] = deque()
        self._later: list[tuple[float, str]] = []
        self._last_sent: dict[str, float] = {}
        self._sent: dict[str, DeviceState] = {}  # each device's newest state handed to a link
        self._announced: set[str] = set()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    # -- the caller's side: O(log devices), never waits --------------------------------------------------

    async def publish(
        self, device_id: str, reading: Reading, quarter: QuarterFigures | None, warning: bool
    ) -> None:
        """The follower's call for each new reading: never raises, never waits (see ``offer``)."""
        try:
            self.offer(device_state(device_id, reading, quarter, warning))
        except Exception as exc:  # Home Assistant's view is an extra: the follower's work goes on
            self.stats.refused += 1
            why = {"device_id": device_id[:80], "error": describe_error(exc)}
            log.warning("home assistant state not published", extra=why)

    def offer(self, state: DeviceState) -> None:
        """Records ``state`` as its device's newest; sent when the device's interval allows. ValueError for
        a device id outside the contract's pattern (which no topic could carry)."""
        device = state.device_id
        self._topics.state(device)
        if device in self._pending:
            self.stats.coalesced += 1
            self._pending[device] = state
            return
        self._pending[device] = state
        self._schedule(device)

    def _schedule(self, device: str) -> None:
        """Queues a device that has just got a pending state: now, or when its interval allows."""
        due = self._last_sent.get(device, float("-inf")) + self._interval
        if due <= time.monotonic():
            self._ready.append(device)
            self._wake.set()
        else:
            heapq.heappush(self._later, (due, device))
            if self._later[0][1] == device:
                self._wake.set()  # the sender's sleep must end sooner

    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="homeassistant-mqtt")

    async def stop(self) -> None:
        """Publishes ``offline`` when connected, disconnects and ends the task (at once when not
        connected: a connection attempt in progress is not waited for)."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        try:
            wait_s = self._timeout + 1 if self.connected else 0.0
            await asyncio.wait_for(asyncio.shield(self._task), wait_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def __aenter__(self) -> "HomeAssistantPublisher":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the sender's side ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._backoff[0]
        while not self._closing:
            try:
                async with self._client() as client:
                    self.connected = True
                    self.stats.connects += 1
                    delay = self._backoff[0]
                    log.info("mqtt broker connected", extra={"broker": self._broker.describe()})
                    await self._serve(client)
                    return
            except (aiomqtt.MqttError, TimeoutError) as exc:
                self.stats.connect_failures += 1
                log.warning("mqtt broker unreachable or lost", extra=self._why(exc, delay))
            except Exception as exc:  # a bug here must not end Home Assistant's updates for good
                self.stats.connect_failures += 1
                log.error("mqtt publisher failed", extra=self._why(exc, delay))
            finally:
                self.connected = False
                self._announced.clear()
            await self._pause(delay * random.uniform(0.8, 1.2))  # jitter: replicas do not reconnect in step
            delay = min(delay * 2, self._backoff[1])

    def _why(self, exc: BaseException, delay: float) -> dict[str, object]:
        return {
            "broker": self._broker.describe(),
            "error": describe_error(exc),
            "retry_in_s": round(delay, 2),
        }

    def _client(self) -> aiomqtt.Client:
        b = self._broker
        return aiomqtt.Client(
            b.host,
            b.port,
            username=b.username,
            password=b.password,
            identifier=self._identifier,
            will=aiomqtt.Will(self._topics.availability, OFFLINE, qos=1, retain=True),
            tls_context=ssl.create_default_context() if b.tls else None,
            keepalive=KEEPALIVE_S,
            timeout=self._timeout,
        )

    async def _pause(self, seconds: float) -> None:
        """Sleeps ``seconds`` unless ``stop`` is called meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wait_closing(), seconds)

    async def _wait_closing(self) -> None:
        while not self._closing:
            self._wake.clear()
            await self._wake.wait()

    async def _serve(self, client: aiomqtt.Client) -> None:
        # What was sent on the previous link may have been lost with it (QoS 0): each device's newest
        # state goes again (with its configs), unless a newer one is waiting anyway.
        for device, state in self._sent.items():
            if device not in self._pending:
                self._pending[device] = state
                self._schedule(device)
        async with asyncio.timeout(None) as deadline:
            link = _Link(client, deadline, self._timeout)
            await self._say_online(link)
            while not self._closing:
                if time.monotonic() >= self._online_due:
                    await self._say_online(link)
                states = self._take_due()
                if not states:
                    deadline.reschedule(None)
                    await self._sleep_until_due()
                    continue
                try:
                    await self._send(link, states)
                except BaseException:
                    # Not sent: each kept as its device's newest unless a newer one came meanwhile.
                    for state in states:
                        if state.device_id not in self._pending:
                            self._pending[state.device_id] = state
                            self._ready.append(state.device_id)
                    raise
            await link.put(self._topics.availability, OFFLINE.encode(), qos=1)

    async def _say_online(self, link: "_Link") -> None:
        await link.put(self._topics.availability, ONLINE.encode(), qos=1)
        self._online_due = time.monotonic() + self._online_refresh

    def _take_due(self) -> list[DeviceState]:
        """Up to BURST states that are due, taken out of ``_pending``."""
        now = time.monotonic()
        while self._later and self._later[0][0] <= now:
            self._ready.append(heapq.heappop(self._later)[1])
        out: list[DeviceState] = []
        while self._ready and len(out) < BURST:
            state = self._pending.pop(self._ready.popleft(), None)
            if state is not None:
                out.append(state)
        return out

    async def _sleep_until_due(self) -> None:
        self._wake.clear()
        until = min(self._online_due, self._later[0][0]) if self._later else self._online_due
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(until - time.monotonic()):
                await self._wake.wait()

    async def _send(self, link: "_Link", states: list[DeviceState]) -> None:
        messages: list[tuple[str, bytes]] = []
        configs_sent = 0
        now = time.monotonic()
        for state in states:
            device = state.device_id
            # Stamped before the first await: a state published while this one is on its way is due a
            # full interval from now, not at once.
            self._last_sent[device] = now
            if device not in self._announced:
                # _announced is per connection, and a failure here ends the connection.
                found = configs(self._topics, device)
                messages += found
                configs_sent += len(found)
                self._announced.add(device)
            messages.append((self._topics.state(device), state_payload(state)))
        for i in range(0, len(messages), BURST):
            await link.put_many(messages[i : i + BURST])
        self.stats.configs_sent += configs_sent
        self.stats.states_sent += len(states)
        for state in states:
            self._sent[state.device_id] = state


@dataclass(slots=True)
class _Link:
    """A connection and the deadline of what is being sent on it: moved forward before each message
    (TimeoutError when the broker did not take one within ``timeout_s``). One deadline, rescheduled, costs
    less than a timeout per publish, which is a task each."""

    client: aiomqtt.Client
    deadline: asyncio.Timeout
    timeout_s: float

    async def put(self, topic: str, payload: bytes, qos: int = 0) -> None:
        """One retained message."""
        self.deadline.reschedule(asyncio.get_running_loop().time() + self.timeout_s)
        await self.client.publish(topic, payload, qos=qos, retain=True, timeout=math.inf)

    async def put_many(self, messages: list[tuple[str, bytes]]) -> None:
        """Retained QoS 0 messages handed to the client together: one pass of the event loop writes
        them all, where one at a time would cost a pass (and a wake-up of this task) each."""
        self.deadline.reschedule(asyncio.get_running_loop().time() + self.timeout_s)
        sent = (self.client.publish(t, p, qos=0, retain=True, timeout=math.inf) for t, p in messages)
        failed = [r for r in await asyncio.gather(*sent, return_exceptions=True) if r is not None]
        if failed:
            raise failed[0]
