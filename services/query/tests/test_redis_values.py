"""Issue 11 §5 (query side): a value in Redis that is not what we wrote — a cache entry or a device's
latest reading — is a miss answered from PostgreSQL, never a 500 and never served as it is."""

import json
from collections.abc import Iterator

import httpx
import pytest
from query_probes import metric
from query_scenes import query_env
from redis.asyncio import Redis

from p1_query.cache import decode_entry
from p1_schema.redis import latest_key
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

ALL = {"Authorization": "Bearer tok-all"}
LATEST = latest_key("q-swap")
PG_LATEST_TS = "2026-05-06T00:00:00Z"  # q-swap's newest stored reading


def _realtime(api: ServiceProcess) -> httpx.Response:
    return httpx.get(api.base_url + "/v1/devices/q-swap/realtime", headers=ALL, timeout=10)


def _sample(**fields: object) -> bytes:
    base: dict[str, object] = {"ts": "2026-11-29T13:12:34.000000Z", "power_w": 1.0, "import_kwh": 2.0}
    return json.dumps({**base, "export_kwh": 0.0, **fields}).encode()


@pytest.mark.parametrize(
    "value",
    [
        b"\xff\xfe not even text",
        b"not json",
        b"",
        b"[1, 2]",
        b"[" * 100_000,  # deeper than any JSON decoder recurses
        b'{"ts": 5, "power_w": 1, "import_kwh": 1, "export_kwh": 0}',
        _sample(ts="2026-11-29T13:12:34"),  # no offset
        _sample(ts="0001-01-01T00:00:00+01:00"),  # not representable in UTC
        _sample(gas_m3=1.0, gas_ts="0001-01-01T00:00:00+01:00"),  # nor is this: no answer can say it
        _sample(water_m3=1.0, water_ts="2100-01-01T00:00:00Z"),  # outside the supported range
        _sample(power_w="412"),
        _sample(power_w=True),
        b'{"ts": "2026-11-29T13:12:34Z", "power_w": NaN, "import_kwh": 1, "export_kwh": 0}',
        _sample(import_kwh=-5.0),  # outside the contract
        json.dumps({"power_w": 1.0}).encode(),  # no ts
    ],
)
async def test_a_latest_reading_that_is_not_a_sample_is_read_from_postgres(
    api: ServiceProcess, redis_client: Redis, value: bytes
) -> None:
    await redis_client.set(LATEST, value)
    try:
        r = _realtime(api)
    finally:
        await redis_client.delete(LATEST)
    assert r.status_code == 200, r.text
    assert r.json()["ts"] == PG_LATEST_TS
    assert "Traceback" not in api.logs()


async def test_a_latest_key_of_another_type_or_lost_is_read_from_postgres(
    api: ServiceProcess, redis_client: Redis
) -> None:
    await redis_client.hset(LATEST, "ts", "2026-11-29T13:12:34Z")  # GET answers WRONGTYPE
    try:
        assert _realtime(api).json()["ts"] == PG_LATEST_TS
    finally:
        await redis_client.delete(LATEST)
    assert _realtime(api).json()["ts"] == PG_LATEST_TS  # evicted or never written: the same
    await redis_client.set(LATEST, _sample(power_w=777.0))  # and what ingest writes is served
    try:
        assert _realtime(api).json()["power_w"] == 777.0
    finally:
        await redis_client.delete(LATEST)


# ---- cache entries ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh(loaded: str, redis_url: str) -> Iterator[ServiceProcess]:
    """A second query process on the same Redis, whose own process cache is empty: what it serves from
    the cache it has read from Redis."""
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)], query_env(loaded, redis_url), port
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def _series(proc: ServiceProcess, tz: str) -> httpx.Response:
    params = {"start": "2026-03-29T00:00:00Z", "end": "2026-03-29T06:00:00Z", "bucket": "15m", "tz": tz}
    r = httpx.get(proc.base_url + "/v1/devices/q-dst/series", params=params, headers=ALL, timeout=30)
    assert r.status_code == 200, r.text
    return r


async def _only_key(redis_client: Redis, pattern: str) -> bytes:
    keys = [k async for k in redis_client.scan_iter(match=pattern)]
    assert len(keys) == 1, keys
    key: bytes = keys[0]
    return key


def _tampered(entry: bytes) -> list[tuple[str, bytes]]:
    tag, _, body = entry.partition(b"\n")
    return [
        ("garbage", b"\x00\xff garbage"),
        ("truncated", entry[: len(entry) // 2]),
        ("another body", tag + b"\n" + body.replace(b'"samples":', b'"samples": ', 1)),
        ("not ascii", "\u00e9t\u00e9".encode() + b"\n" + body),
        ("no newline", tag),
    ]


async def test_a_cache_entry_that_is_not_what_we_wrote_is_computed_again(
    api: ServiceProcess, fresh: ServiceProcess, redis_client: Redis
) -> None:
    # One time zone per variant: one key each, and one the fresh process has never answered.
    zones = ["Asia/Tokyo", "America/Lima", "Africa/Nairobi", "Asia/Dubai", "Pacific/Auckland"]
    reference = _series(api, zones[0])
    entry = await redis_client.get(await _only_key(redis_client, f"p1:q:q-dst:*series*|{zones[0]}"))
    assert decode_entry(entry) is not None
    for zone, (what, bad) in zip(zones, _tampered(entry), strict=True):
        expected = _series(api, zone)  # computed and stored by the first process
        key = await _only_key(redis_client, f"p1:q:q-dst:*series*|{zone}")
        await redis_client.set(key, bad, ex=600)
        corrupt = metric(fresh.base_url, 'p1_query_cache_total{result="corrupt"}')
        served = _series(fresh, zone)
        assert served.content == expected.content, what
        assert served.headers["etag"] == expected.headers["etag"], what
        assert metric(fresh.base_url, 'p1_query_cache_total{result="corrupt"}') == corrupt + 1, what
        assert decode_entry(await redis_client.get(key)) is not None, f"{what}: written again"
    assert reference.status_code == 200
    assert "Traceback" not in fresh.logs()


async def test_a_corrupt_month_of_capacity_tops_is_computed_again(
    api: ServiceProcess, fresh: ServiceProcess, redis_client: Redis
) -> None:
    params = {"month": "2026-03", "tz": "Europe/Paris"}
    path = "/v1/devices/q-cap/capacity"
    async with httpx.AsyncClient(headers=ALL, timeout=30) as client:
        expected = await client.get(api.base_url + path, params=params)
        assert expected.status_code == 200
        months = [k async for k in redis_client.scan_iter(match="p1:q:q-cap:*capacity-month:*|Europe/Paris")]
        assert len(months) == 10  # the final months of the window: 2025-04 to 2026-01
        for i, key in enumerate(months):
            await redis_client.set(key, b"[[1e999, 5]]" if i % 2 else b"not what we wrote", ex=600)
        await redis_client.delete(
            await _only_key(redis_client, "p1:q:q-cap:*:capacity:2026-03|Europe/Paris|*")
        )
        served = await client.get(fresh.base_url + path, params=params)
    assert served.status_code == 200, served.text
    assert served.json() == expected.json()
    assert metric(fresh.base_url, 'p1_query_cache_total{result="corrupt"}') >= 10
