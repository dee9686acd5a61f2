"""The Redis layout against a real Redis: key names, the payload (times as ``timeform.instant``), the
compare-and-set that never moves the latest reading back, and reading back only what it wrote."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from p1_contracts.models import Sample
from p1_schema.redis import (
    LatestReading,
    decode_latest,
    encode_latest,
    latest_key,
    live_channel,
    store_latest,
)

T = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def sample(ts: datetime, power_w: float = 400.0, **more: object) -> Sample:
    return Sample.model_validate(
        {"ts": ts, "power_w": power_w, "import_kwh": 10.0, "export_kwh": 0.0, **more}
    )


@pytest.fixture
async def redis(redis_client: Redis) -> AsyncIterator[Redis]:
    yield redis_client
    await redis_client.delete(latest_key("dev"))


def test_key_names() -> None:
    assert (latest_key("dev-1"), live_channel("dev-1")) == ("p1:latest:dev-1", "p1:live:dev-1")


def test_the_payload_writes_instants_in_utc_and_leaves_out_absent_fields() -> None:
    brussels = datetime(2026, 11, 29, 13, 0, 0, 500000, tzinfo=ZoneInfo("Europe/Brussels"))
    doc = json.loads(encode_latest("dev", sample(brussels, gas_m3=1.5, gas_ts=T - timedelta(minutes=5))))
    assert doc == {
        "device_id": "dev",
        "ts": "2026-11-29T12:00:00.500000Z",
        "power_w": 400.0,
        "import_kwh": 10.0,
        "export_kwh": 0.0,
        "gas_m3": 1.5,
        "gas_ts": "2026-11-29T11:55:00Z",
    }


async def test_only_a_newer_reading_replaces_the_latest_and_is_published(redis: Redis) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(live_channel("dev"))
    try:
        assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"  # type: ignore[index]
        half = T + timedelta(microseconds=500000)
        steps = [
            (half, True),  # the first
            (T, False),  # older: whole seconds sort before a fraction of the same second
            (half, False),  # the same reading again
            (T + timedelta(seconds=1), True),  # newer, whole second after a fraction
            (T + timedelta(seconds=1, microseconds=1), True),
            (T - timedelta(days=1), False),
        ]
        for ts, replaced in steps:
            assert await store_latest(redis, "dev", sample(ts, power_w=ts.second)) is replaced, ts
        published = []
        for _ in range(3):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            assert message is not None
            published.append(json.loads(message["data"])["ts"])
        assert published == [
            "2026-11-29T12:00:00.500000Z",
            "2026-11-29T12:00:01Z",
            "2026-11-29T12:00:01.000001Z",
        ]
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
        assert json.loads(await redis.get(latest_key("dev")))["ts"] == "2026-11-29T12:00:01.000001Z"
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()


async def test_a_payload_of_the_older_fixed_width_form_is_compared_by_time(redis: Redis) -> None:
    """Payloads written before times became ``instant`` always had six fraction digits."""
    await redis.set(latest_key("dev"), json.dumps({"ts": "2026-11-29T12:00:00.000000Z"}))
    assert await store_latest(redis, "dev", sample(T)) is False
    assert await store_latest(redis, "dev", sample(T + timedelta(microseconds=1))) is True


async def test_concurrent_writers_leave_the_newest(redis: Redis) -> None:
    times = [T + timedelta(seconds=k) for k in range(30)]
    await asyncio.gather(*(store_latest(redis, "dev", sample(t)) for t in reversed(times)))
    found = decode_latest(await redis.get(latest_key("dev")))
    assert found is not None
    assert found.ts == times[-1]


def test_decode_reads_back_what_encode_wrote() -> None:
    written = encode_latest("dev", sample(T, tariff=2, voltage_l1_v=231.5))
    assert decode_latest(written) == LatestReading(
        T,
        {
            "ts": T,
            "power_w": 400.0,
            "import_kwh": 10.0,
            "export_kwh": 0.0,
            "tariff": 2.0,
            "voltage_l1_v": 231.5,
        },
    )


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "not bytes",
        b"",
        b"not json",
        b"[1]",
        b'{"ts": "2026-11-29T12:00:00Z", "power_w": "412", "import_kwh": 1, "export_kwh": 0}',
        b'{"ts": "2026-11-29T12:00:00", "power_w": 1, "import_kwh": 1, "export_kwh": 0}',
        b'{"ts": "2100-01-01T00:00:00Z", "power_w": 1, "import_kwh": 1, "export_kwh": 0}',
        # Every time of the reading is in the range, not only ts: year 1 at +01:00 has no UTC form.
        b'{"ts": "2026-11-29T12:00:00Z", "power_w": 1, "import_kwh": 1, "export_kwh": 0,'
        b' "gas_m3": 1, "gas_ts": "0001-01-01T00:00:00+01:00"}',
        b'{"power_w": 1, "import_kwh": 1, "export_kwh": 0}',
    ],
)
def test_anything_else_is_no_reading(raw: object) -> None:
    assert decode_latest(raw) is None
