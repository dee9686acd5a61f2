"""``GET /v1/devices/{id}/live`` against real query processes: new readings published as ingest publishes
them (Redis) or uploaded through a real ingest process (no Redis: PostgreSQL polled), the heartbeat, the
end on revocation and on shutdown, the limits."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from query_scenes import seed_token
from redis.asyncio import Redis
from web_fixtures import (
    DEVICE,
    GONE,
    HEARTBEAT_S,
    LIVE_PER_TOKEN,
    READ,
    TOKENS,
    WebQuery,
    cookie_of,
    publish,
    reading,
    sign_in,
    with_cookie,
)

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

BEARER = {"Authorization": f"Bearer {READ}"}
DELIVERY_S = 2.0


@dataclass
class Event:
    name: str  # "reading", "quarter", "end", or ":" for a comment
    data: str

    def json(self) -> dict[str, object]:
        parsed: dict[str, object] = json.loads(self.data)
        return parsed


class Events:
    """The events of an open stream, read line by line with a deadline per event."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, timeout_s: float) -> Event | None:
        """The next event or comment; None when the stream ended."""
        name, data = "message", ""
        async with asyncio.timeout(timeout_s):
            async for line in self._lines:
                if line.startswith(":"):
                    return Event(":", line[1:].strip())
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif line == "" and data:
                    return Event(name, data)
        return None

    async def until(self, name: str, timeout_s: float) -> Event:
        deadline = time.monotonic() + timeout_s
        for _ in range(1000):
            found = await self.next(max(0.01, deadline - time.monotonic()))
            assert found is not None, f"the stream ended before an event {name}"
            if found.name == name:
                return found
        raise AssertionError(f"no event {name}")


@asynccontextmanager
async def stream(base: str, device: str, headers: dict[str, str]) -> AsyncIterator[Events]:
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", f"/v1/devices/{device}/live", headers=headers) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Events(response)


@pytest.fixture(scope="module")
async def device_has_reading(web: WebQuery, redis_client: Redis) -> None:
    await publish(redis_client, DEVICE, reading(100.0))


async def test_a_new_reading_arrives_within_two_seconds(
    web: WebQuery, redis_client: Redis, device_has_reading: None
) -> None:
    async with stream(web.url, DEVICE, BEARER) as events:
        first = await events.until("reading", 5)
        assert first.json()["device_id"] == DEVICE
        published = time.monotonic()
        await publish(redis_client, DEVICE, reading(777.0))
        new = await events.until("reading", DELIVERY_S)
        assert time.monotonic() - published < DELIVERY_S
        assert new.json()["power_w"] == 777.0
        assert new.json()["import_kwh"] == 1000.5
        assert "age_s" in new.json()


async def test_an_idle_stream_sends_heartbeats(web: WebQuery, device_has_reading: None) -> None:
    async with stream(web.url, DEVICE, BEARER) as events:
        await events.until("reading", 5)
        # (The running quarter may come first: it follows the first reading.)
        comment = await events.until(":", HEARTBEAT_S * 5)
        assert comment.data == "hb"


async def test_the_session_cookie_opens_a_stream_that_ends_when_the_token_is_removed(
    web: WebQuery, device_has_reading: None
) -> None:
    value = cookie_of(sign_in(web.url, GONE))
    async with stream(web.url, DEVICE, with_cookie(value)) as events:
        await events.until("reading", 5)
        web.write_tokens(f"{READ}:{DEVICE}\n")
        try:
            end = await events.until("end", 5)
            assert end.json() == {"reason": "revoked"}
            assert await events.next(2) is None  # and the response is over
        finally:
            web.write_tokens(TOKENS)


async def test_streams_per_token_are_limited(web: WebQuery, device_has_reading: None) -> None:
    async with (
        httpx.AsyncClient(base_url=web.url, timeout=10) as client,
        stream(web.url, DEVICE, BEARER) as one,
        stream(web.url, DEVICE, BEARER) as two,
    ):
        await one.until("reading", 5)
        await two.until("reading", 5)
        assert LIVE_PER_TOKEN == 2
        r = await client.get(f"/v1/devices/{DEVICE}/live", headers=BEARER)
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1
    # Both closed by the client: the slots are free again (the disconnect is watched, not awaited).
    async with httpx.AsyncClient(base_url=web.url, timeout=10) as client:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            async with client.stream("GET", f"/v1/devices/{DEVICE}/live", headers=BEARER) as again:
                if again.status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("the slots of closed streams were not freed")


def test_refusals_are_the_contracts(web: WebQuery, device_has_reading: None) -> None:
    assert httpx.get(f"{web.url}/v1/devices/{DEVICE}/live").status_code == 401
    assert httpx.get(f"{web.url}/v1/devices/unknown-dev/live", headers=BEARER).status_code == 404
    bad = httpx.get(f"{web.url}/v1/devices/-bad-/live", headers=BEARER)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["path", "device_id"]


LIVE = "q-live"


async def test_without_redis_the_stream_polls_postgresql_and_ends_when_the_server_stops(
    database_url: str, ingest: ServiceProcess
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    upload_headers = {"Authorization": f"Bearer {seed_token(LIVE)}"}

    def upload(ts: datetime, power_w: float) -> None:
        sample = {"ts": ts.isoformat(), "power_w": power_w, "import_kwh": 50.0, "export_kwh": 1.0}
        body = {"device_id": LIVE, "samples": [sample]}
        r = httpx.post(f"{ingest.base_url}/v1/samples", json=body, headers=upload_headers, timeout=10)
        assert r.status_code == 200, r.text

    upload(now - timedelta(seconds=30), 10.0)
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "READ_TOKENS": f"live-tok:{LIVE}",
        "LIVE_POLL_S": "0.2",
        "REALTIME_MEMO_S": "0",
        "LOG_LEVEL": "WARNING",
    }
    proc = ServiceProcess([console_script("p1-query"), "serve", "--port", str(port)], env, port).start()
    try:
        async with stream(proc.base_url, LIVE, {"Authorization": "Bearer live-tok"}) as events:
            assert (await events.until("reading", 5)).json()["power_w"] == 10.0
            # The running quarter (capacity/now's JSON) follows the first reading and each new one.
            quarter = (await events.until("quarter", 5)).json()
            assert (quarter["device_id"], quarter["power_w"]) == (LIVE, 10.0)
            assert quarter["tz"] == "Europe/Brussels"
            uploaded = time.monotonic()
            upload(now, 20.0)
            assert (await events.until("reading", DELIVERY_S)).json()["power_w"] == 20.0
            assert time.monotonic() - uploaded < DELIVERY_S
            assert (await events.until("quarter", 3)).json()["power_w"] == 20.0
            stopped = time.monotonic()
            proc.signal(15)
            end = await events.until("end", 5)
            assert end.json() == {"reason": "stopping"}
        assert proc.stop() in CLEAN_EXITS, proc.logs()
        # Well within the 20 s grace period a stream that did not end would hold it.
        assert time.monotonic() - stopped < 5
    finally:
        proc.kill()
