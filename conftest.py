"""Fixtures shared by every package's tests: real PostgreSQL and Redis, created per test session."""

import os
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from p1_servicekit.testing_db import (
    create_database,
    drop_database,
    has_timescaledb,
    pg_server_url,
    timescaledb_lane,
)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A fresh database for this test session, migrated to the latest schema, dropped after."""
    url = await create_database(pg_server_url())
    try:
        from p1_schema.migrate import migrate

        await migrate(url)
        yield url
    finally:
        await drop_database(url)


@pytest.fixture(scope="session")
async def on_timescaledb(database_url: str) -> bool:
    """True when this session's storage is TimescaleDB (the lane of ``scripts/timescaledb.sh``)."""
    found = await has_timescaledb(database_url)
    if timescaledb_lane() and not found:
        pytest.fail(
            "TEST_TIMESCALEDB=1, but the session's database has no TimescaleDB: "
            "the lane would quietly test plain PostgreSQL"
        )
    return found


@pytest.fixture
def needs_timescaledb(on_timescaledb: bool) -> None:
    """For tests of what only TimescaleDB does: skipped on plain PostgreSQL."""
    if not on_timescaledb:
        pytest.skip("TimescaleDB only: runs in the TimescaleDB lane (make test-timescale)")


@pytest.fixture
def needs_plain_postgresql(on_timescaledb: bool) -> None:
    """For tests of the plain-PostgreSQL storage layout (monthly partitions): skipped on TimescaleDB."""
    if on_timescaledb:
        pytest.skip("plain PostgreSQL only (monthly partitions); TimescaleDB has its own tests")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Redis on its own logical database (TEST_REDIS_DB, default 9), emptied before the session."""
    base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
    return f"{base}/{os.environ.get('TEST_REDIS_DB', '9')}"


@pytest.fixture(scope="session")
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()
