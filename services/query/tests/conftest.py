"""Query test fixtures: the scenes loaded once through the ingest storage path, and a real query
process (uvicorn over HTTP) with Redis. Also makes ``query_scenes`` importable (pytest runs with
--import-mode=importlib)."""

import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from query_scenes import all_meters, bulk_meter, query_env  # noqa: E402


@pytest.fixture(scope="session")
async def loaded(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        for meter in all_meters():
            await meter.load(conn)
    finally:
        await conn.close()
    return database_url


@pytest.fixture(scope="session")
def api(loaded: str, redis_url: str) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)], query_env(loaded, redis_url), port
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


@pytest.fixture(scope="session")
async def bulk(loaded: str) -> str:
    """``loaded`` plus the readings of ``query_scenes.bulk_meter``."""
    conn = await asyncpg.connect(loaded)
    try:
        await bulk_meter().load(conn)
    finally:
        await conn.close()
    return loaded
