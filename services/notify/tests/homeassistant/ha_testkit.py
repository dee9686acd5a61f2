"""Helpers of the Home Assistant tests against the real Mosquitto on 127.0.0.1:1883: a recorder of every
message under a test's own topic prefix, the clean-up of what it retained, and a TCP relay a test can cut
(a broker link lost without touching the shared broker)."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiomqtt

HOST = "127.0.0.1"
PORT = 1883


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool
    at: float  # time.monotonic() on arrival


@dataclass
class Recorder:
    """Every message on ``<prefix>/#`` since it subscribed, in order of arrival."""

    messages: list[Seen] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def on(self, topic: str) -> list[Seen]:
        return [m for m in self.messages if m.topic == topic]

    async def until(self, check: Callable[[], bool], within: float = 5.0) -> None:
        """Returns once ``check()`` holds, re-checked at each arrival; fails after ``within`` s."""
        deadline = time.monotonic() + within
        while not check():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"not within {within} s; seen: {[m.topic for m in self.messages]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def add(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        self.messages.append(Seen(str(message.topic), payload, message.retain, time.monotonic()))
        self._arrived.set()


@contextlib.asynccontextmanager
async def recording(prefix: str) -> AsyncIterator[Recorder]:
    """Records ``<prefix>/#`` from before the caller publishes anything."""
    recorder = Recorder()
    async with aiomqtt.Client(HOST, PORT) as client:
        await client.subscribe(f"{prefix}/#", qos=1)

        async def pump() -> None:
            async for message in client.messages:
                recorder.add(message)

        task = asyncio.create_task(pump())
        try:
            yield recorder
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def clear_retained(topics: set[str]) -> None:
    """An empty retained message on each topic: the broker forgets what was retained there (QoS 1: the
    broker has it when the publish returns)."""
    async with aiomqtt.Client(HOST, PORT) as client:
        for topic in sorted(topics):
            await client.publish(topic, b"", qos=1, retain=True)


class Relay:
    """A TCP relay to the broker: the publisher connects through it; ``cut`` drops every link (the broker
    then sees the client gone, as after a network failure); ``stall`` makes the links open now swallow
    what the client sends (a broker that takes nothing more: the client's messages are never answered)."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._stalled: set[asyncio.StreamReader] = set()
        self._readers: list[asyncio.StreamReader] = []
        self.port = 0

    async def __aenter__(self) -> "Relay":
        self._server = await asyncio.start_server(self._link, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def stall(self) -> None:
        self._stalled.update(self._readers)

    def cut(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(HOST, PORT)
        self._writers += [writer, up_writer]
        self._readers.append(reader)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(65536):
                if reader not in self._stalled:
                    writer.write(chunk)
                    await writer.drain()
        writer.close()
