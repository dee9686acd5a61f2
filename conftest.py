"""Fixtures shared by every package's tests: real PostgreSQL and Redis, created per test session."""

import os
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from p1_servicekit.testing import create_database, drop_database, pg_server_url


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A fresh database for this test session, migrated to the latest schema, dropped after."""
    url = await create_database(pg_server_url())
    try:
        from p1_ingest.migrate import migrate

        await migrate(url)
        yield url
    finally:
        await drop_database(url)


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
