"""POST /v1/samples over HTTP against a real ``p1-ingest serve`` process, PostgreSQL and Redis."""

import asyncio
import gzip
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from ingest_kit import until_a_request_waits_on_a_lock
from redis.asyncio import Redis

from p1_contracts.timeform import instant
from p1_ingest.app import create_app
from p1_ingest.settings import IngestSettings
from p1_schema.redis import latest_key, live_channel
from p1_servicekit.spec import load_spec, route_mismatches
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

MAX_BODY = 256 * 1024
MAX_INFLATED = 1024 * 1024
DEVICES = [f"api-{uuid.uuid4().hex[:8]}-{i}" for i in range(12)]
TOKENS = {d: f"tok-{d}" for d in DEVICES}
HASHED = DEVICES[-1]  # configured as sha256:<hex>, never in plain text


def token_config() -> str:
    plain = [f"{TOKENS[d]}:{d}" for d in DEVICES if d != HASHED]
    digest = hashlib.sha256(TOKENS[HASHED].encode()).hexdigest()
    return ",".join([*plain, f"sha256:{digest}:{HASHED}"])


@pytest.fixture(scope="module")
def ingest(database_url: str, redis_url: str) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(port)],
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DEVICE_TOKENS": token_config(),
            "MAX_BODY_BYTES": str(MAX_BODY),
            "MAX_DECOMPRESSED_BYTES": str(MAX_INFLATED),
            "MAX_INFLIGHT_PER_DEVICE": "1",
        },
        port,
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


@pytest.fixture
async def client(ingest: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ingest.base_url, timeout=30) as c:
        yield c


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


def readings(n: int, start: datetime | None = None) -> list[dict[str, Any]]:
    start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    return [
        {
            "ts": (start + timedelta(seconds=i)).isoformat(),
            "power_w": 100 + i % 50,
            "import_kwh": 1000 + i / 1000,
            "export_kwh": 5.0,
            "avg_power_15m_w": 120,
        }
        for i in range(n)
    ]


def body(device: str, samples: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps(
        {"device_id": device, "meter": {"serial": "S-" + device}, "samples": samples, **extra}
    ).encode()


def headers(device: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[device]}", "Content-Type": "application/json", **extra}


async def stored(db: asyncpg.Connection, device: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM samples WHERE device_id = $1", device))


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = r.json()
    assert problem["status"] == status
    assert {"type", "title", "detail"} <= problem.keys()
    return problem


def test_routes_match_the_spec() -> None:
    app = create_app(IngestSettings(device_tokens="t:d"))  # routes only: no lifespan runs here
    assert route_mismatches(app, load_spec(), "ingest") == []


async def test_accepts_then_counts_duplicates(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    dev = DEVICES[0]
    data = readings(500)
    r = await client.post("/v1/samples", content=body(dev, data), headers=headers(dev))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 500, "duplicates": 0}
    r = await client.post("/v1/samples", content=body(dev, data[250:] + readings(10)), headers=headers(dev))
    assert r.json() == {"accepted": 0, "duplicates": 260}
    assert await stored(db, dev) == 500


async def test_gzip_and_unknown_fields(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    dev = DEVICES[1]
    data = [{**s, "future_sensor_w": 5, "nested": {"a": [1]}} for s in readings(300)]
    payload = gzip.compress(body(dev, data, firmware="7.0", meter={"serial": "X", "hw": 2}))
    r = await client.post(
        "/v1/samples", content=payload, headers=headers(dev, **{"Content-Encoding": "gzip"})
    )
    assert r.json() == {"accepted": 300, "duplicates": 0}
    assert await stored(db, dev) == 300
    assert await db.fetchval("SELECT meter_serial FROM devices WHERE device_id = $1", dev) == "X"


async def test_sha256_configured_token(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/samples", content=body(HASHED, readings(3)), headers=headers(HASHED))
    assert r.json() == {"accepted": 3, "duplicates": 0}


async def test_auth(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    dev, other = DEVICES[2], DEVICES[3]
    payload = body(dev, readings(5))
    no_token = await client.post("/v1/samples", content=payload, headers={"Content-Type": "application/json"})
    assert_problem(no_token, 401)
    assert no_token.headers["www-authenticate"] == "Bearer"
    wrong = await client.post(
        "/v1/samples", content=payload, headers=headers(dev, Authorization="Bearer nope")
    )
    assert_problem(wrong, 401)
    basic = await client.post(
        "/v1/samples", content=payload, headers=headers(dev, Authorization="Basic eDp5")
    )
    assert_problem(basic, 401)
    forbidden = await client.post("/v1/samples", content=payload, headers=headers(other))
    assert "may not write" in assert_problem(forbidden, 403)["detail"]
    assert await stored(db, dev) == 0


async def test_media_type_and_encoding(client: httpx.AsyncClient) -> None:
    dev = DEVICES[2]
    payload = body(dev, readings(5))
    r = await client.post(
        "/v1/samples", content=payload, headers=headers(dev, **{"Content-Type": "text/plain"})
    )
    assert_problem(r, 415)
    r = await client.post("/v1/samples", content=payload, headers=headers(dev, **{"Content-Encoding": "br"}))
    assert_problem(r, 415)
    r = await client.post(
        "/v1/samples",
        content=payload,
        headers=headers(dev, **{"Content-Type": "application/json; charset=utf-8"}),
    )
    assert r.status_code == 200


async def test_size_limits(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    dev = DEVICES[4]
    big = body(dev, readings(3000))
    assert len(big) > MAX_BODY
    assert_problem(await client.post("/v1/samples", content=big, headers=headers(dev)), 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
        for i in range(0, len(big), 16384):
            yield big[i : i + 16384]

    assert_problem(await client.post("/v1/samples", content=chunks(), headers=headers(dev)), 413)
    bomb = gzip.compress(
        b'{"device_id": "' + dev.encode() + b'", "samples": [' + b" " * (MAX_INFLATED + 10) + b"]}"
    )
    assert len(bomb) < MAX_BODY
    r = await client.post("/v1/samples", content=bomb, headers=headers(dev, **{"Content-Encoding": "gzip"}))
    assert "decompressed" in assert_problem(r, 413)["detail"]
    r = await client.post(
        "/v1/samples", content=b"garbage", headers=headers(dev, **{"Content-Encoding": "gzip"})
    )
    assert_problem(r, 400)
    assert await stored(db, dev) == 0


async def test_not_json_is_400(client: httpx.AsyncClient) -> None:
    dev = DEVICES[4]
    r = await client.post("/v1/samples", content=b'{"device_id": ', headers=headers(dev))
    assert_problem(r, 400)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"power_w": "NaN"}, "power_w"),
        ({"import_kwh": -0.5}, "import_kwh"),
        ({"export_kwh": -1}, "export_kwh"),
        ({"gas_m3": -3}, "gas_m3"),
        ({"ts": "2026-11-29T12:00:00"}, "ts"),
        ({"power_w": True}, "power_w"),
        ({"tariff": 7}, "tariff"),
        # issue 13.6: the grid's counts are whole and not negative, the frequency a grid's, ids hex
        ({"power_fail_count": -1}, "power_fail_count"),
        ({"voltage_sag_l2_count": 1.5}, "voltage_sag_l2_count"),
        ({"voltage_swell_l3_count": 100000}, "voltage_swell_l3_count"),
        ({"frequency_hz": 1e9}, "frequency_hz"),
        ({"frequency_hz": 0}, "frequency_hz"),
        ({"gas_unique_id": 'G0,"1'}, "gas_unique_id"),
        ({"water_unique_id": ""}, "water_unique_id"),
        ({"water_unique_id": 7}, "water_unique_id"),
    ],
)
async def test_one_bad_reading_rejects_the_batch_and_leaves_no_trace(
    client: httpx.AsyncClient, db: asyncpg.Connection, change: dict[str, Any], field: str
) -> None:
    dev = DEVICES[5]
    data = readings(100)
    data[42] = {**data[42], **change}
    r = await client.post("/v1/samples", content=body(dev, data), headers=headers(dev))
    problem = assert_problem(r, 422)
    assert ["body", "samples", 42, field] in [e["loc"] for e in problem["errors"]]
    assert f"samples.42.{field}" in problem["detail"]
    assert await stored(db, dev) == 0
    assert await db.fetchval("SELECT count(*) FROM devices WHERE device_id = $1", dev) == 0
    assert await db.fetchval("SELECT count(*) FROM rollup_15m WHERE device_id = $1", dev) == 0


async def test_nan_and_infinity_literals(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    dev = DEVICES[5]
    for literal in ("NaN", "Infinity", "-Infinity", "1e400"):
        text = body(dev, readings(3)).decode().replace('"power_w": 101', f'"power_w": {literal}')
        r = await client.post("/v1/samples", content=text.encode(), headers=headers(dev))
        assert r.status_code in (400, 422), (literal, r.text)
        assert_problem(r, r.status_code)
    assert await stored(db, dev) == 0


async def test_future_and_too_many(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    dev = DEVICES[6]
    ahead = readings(3, start=datetime.now(UTC) + timedelta(minutes=10))
    r = await client.post("/v1/samples", content=body(dev, readings(5) + ahead), headers=headers(dev))
    problem = assert_problem(r, 422)
    assert [e["loc"] for e in problem["errors"]] == [["body", "samples", i, "ts"] for i in (5, 6, 7)]
    near = readings(1, start=datetime.now(UTC) + timedelta(minutes=4))
    r = await client.post("/v1/samples", content=body(dev, near), headers=headers(dev))
    assert r.status_code == 200
    many = gzip.compress(body(dev, readings(5001)))
    r = await client.post("/v1/samples", content=many, headers=headers(dev, **{"Content-Encoding": "gzip"}))
    assert ["body", "samples"] in [e["loc"] for e in assert_problem(r, 422)["errors"]]
    assert await stored(db, dev) == 1


async def test_redis_latest_and_publish(client: httpx.AsyncClient, redis_client: Redis) -> None:
    dev = DEVICES[7]
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(live_channel(dev))
    try:
        assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"  # type: ignore[index]
        data = readings(20)
        r = await client.post("/v1/samples", content=body(dev, data), headers=headers(dev))
        assert r.status_code == 200
        latest = json.loads(await redis_client.get(latest_key(dev)))
        newest = datetime.fromisoformat(data[-1]["ts"])
        # The schema's layout: the reading's fields that have a value, its time in UTC with Z.
        assert latest == {**data[-1], "device_id": dev, "ts": instant(newest)}
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message is not None
        assert json.loads(message["data"]) == latest
        # A late batch: stored, but the latest stays, and nothing is published.
        late = readings(5, start=newest - timedelta(hours=1))
        r = await client.post("/v1/samples", content=body(dev, late), headers=headers(dev))
        assert r.json()["accepted"] == 5
        assert json.loads(await redis_client.get(latest_key(dev))) == latest
        r = await client.post("/v1/samples", content=body(dev, late), headers=headers(dev))
        assert r.json() == {"accepted": 0, "duplicates": 5}
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()


async def test_metrics(client: httpx.AsyncClient) -> None:
    dev = DEVICES[8]
    await client.post("/v1/samples", content=body(dev, readings(40)), headers=headers(dev))
    await client.post("/v1/samples", content=body(dev, readings(40)), headers=headers(dev))
    text = (await client.get("/metrics")).text
    values = {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values['p1_ingest_samples_total{result="accepted"}'] >= 40
    assert values['p1_ingest_samples_total{result="duplicate"}'] >= 40
    assert values['p1_ingest_samples_rejected_total{reason="invalid"}'] >= 100  # from the 422 tests
    assert values['p1_ingest_batches_rejected_total{reason="unauthorized"}'] >= 1
    assert values["p1_ingest_batch_size_count"] >= 2
    assert values["p1_ingest_db_write_seconds_count"] >= 2
    assert 'p1_db_errors_total{service="ingest"}' in values
    assert values['p1_redis_up{service="ingest"}'] == 1
    newest = datetime.fromisoformat(readings(40)[-1]["ts"]).timestamp()
    assert values[f'p1_device_last_sample_timestamp_seconds{{device_id="{dev}"}}'] >= newest - 5
    # No device id on any histogram.
    assert not any("device_id" in k for k in values if "_bucket" in k)


async def test_too_many_in_flight_for_one_device_is_429(
    client: httpx.AsyncClient, database_url: str, db: asyncpg.Connection
) -> None:
    """MAX_INFLIGHT_PER_DEVICE=1 here: while a batch of the device waits (its devices row is locked by
    this test), a second one is answered 429 with Retry-After at once; the first then completes."""
    dev = DEVICES[9]
    ok = await client.post("/v1/samples", content=body(dev, readings(2)), headers=headers(dev))
    assert ok.status_code == 200
    holder = await asyncpg.connect(database_url)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM devices WHERE device_id = $1 FOR UPDATE", dev)
        first = asyncio.create_task(
            client.post(
                "/v1/samples",
                content=body(dev, readings(3, start=datetime(2026, 1, 1, tzinfo=UTC))),
                headers=headers(dev),
            )
        )
        await until_a_request_waits_on_a_lock(db, "the first batch to reach the row lock")
        second = await client.post("/v1/samples", content=body(dev, readings(1)), headers=headers(dev))
        assert_problem(second, 429)
        assert int(second.headers["retry-after"]) >= 1
        await tx.rollback()
        assert (await first).json() == {"accepted": 3, "duplicates": 0}
    finally:
        await holder.close()
