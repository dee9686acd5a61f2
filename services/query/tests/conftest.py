"""Query test fixtures: the scenes uploaded once to a real ingest process (``p1-ingest serve`` over HTTP:
the true write path, with ingest's rules) and a real query process (uvicorn over HTTP) with Redis. Also
makes ``query_scenes`` importable (pytest runs with --import-mode=importlib)."""

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from p1_schema.bulk import load_device
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from query_scenes import all_meters, bulk_meter, ingest_env, query_env  # noqa: E402
from web_fixtures import WebQuery, start_web  # noqa: E402


@pytest.fixture(scope="session")
def ingest(database_url: str) -> Iterator[ServiceProcess]:
    """The ingest service the scenes are uploaded to; it stays up for tests that upload more."""
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(port)], ingest_env(database_url), port
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


@pytest.fixture(scope="session")
async def ingest_client(ingest: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ingest.base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
async def loaded(database_url: str, ingest_client: httpx.AsyncClient) -> str:
    for meter in all_meters():
        await meter.upload(ingest_client)
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
    """``loaded`` plus the readings of ``query_scenes.bulk_meter``, by the schema's bulk loader (volume,
    not ingest's rules, is what its tests need)."""
    meter = bulk_meter()
    conn = await asyncpg.connect(loaded)
    try:
        await load_device(conn, meter.device_id, meter.columns(), meter_serial=meter.serial)
    finally:
        await conn.close()
    return loaded


@pytest.fixture(scope="session")
def web(tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str) -> Iterator[WebQuery]:
    """The query process of the dashboard's tests (sessions, files, live streams): ``web_fixtures``."""
    yield from start_web(tmp_path_factory.mktemp("web"), database_url, redis_url)
