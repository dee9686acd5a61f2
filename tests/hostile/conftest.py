"""The standing hostile suite (issue 11): one real ``p1-ingest serve`` and one real ``p1-query serve``
for the whole session, on a database of the suite's own (its URL carries a password, a secret the
probes must never make visible) and the session's Redis database. Makes ``hostile_kit`` importable, and
the query suite's probes (``query_probes``) and the ingest suite's rollup check (``ingest_kit``), which
the hostile probes reuse rather than restate."""

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import pytest

_HERE = Path(__file__).parent
_ROOT = _HERE.parents[1]
for _path in (_HERE, _ROOT / "services" / "query" / "tests", _ROOT / "services" / "ingest" / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from hostile_kit import (  # noqa: E402
    BODY_TIMEOUT_S,
    CACHE_BUDGET_BYTES,
    DB_PASSWORD,
    EXPORT_SEND_TIMEOUT_S,
    HEAD_TIMEOUT_S,
    RETRY_AFTER_S,
    SECRETS,
    STALLED_EXPORTS,
    Stack,
    device_tokens,
    read_tokens,
)

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, assert_no_secret, console_script, free_port  # noqa: E402
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url  # noqa: E402


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="session")
async def hostile_database() -> AsyncIterator[str]:
    """A migrated database of this suite's own, as a URL with a password (the test server trusts
    127.0.0.1, so the password is never checked, but the services hold it as a secret)."""
    from p1_schema.migrate import migrate

    url = await create_database(pg_server_url(), prefix="p1_hostile")
    try:
        await migrate(url)
        yield with_password(url, DB_PASSWORD)
    finally:
        await drop_database(url)


def _env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "DEBUG",  # the most talkative level must still show no secret
        "HTTP_HEAD_TIMEOUT_S": str(HEAD_TIMEOUT_S),
        "RETRY_AFTER_S": str(RETRY_AFTER_S),
    }


def ingest_process(database_url: str, redis_url: str) -> ServiceProcess:
    port = free_port()
    env = {
        **_env(database_url, redis_url),
        "DEVICE_TOKENS": device_tokens(),
        "BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        # Probes send hundreds of requests with one token, and 8 overlapping batches of one device.
        "RATE_LIMIT_PER_S": "1000",
        "RATE_LIMIT_BURST": "1000",
        "MAX_INFLIGHT_PER_DEVICE": "8",
    }
    return ServiceProcess([console_script("p1-ingest"), "serve", "--port", str(port)], env, port)


def query_process(database_url: str, redis_url: str) -> ServiceProcess:
    port = free_port()
    env = {
        **_env(database_url, redis_url),
        "READ_TOKENS": read_tokens(),
        "REALTIME_MEMO_S": "0",
        "EXPORT_MAX_PER_TOKEN": str(STALLED_EXPORTS),
        "EXPORT_MAX_PER_PROCESS": str(STALLED_EXPORTS + 10),
        "EXPORT_SEND_TIMEOUT_S": str(EXPORT_SEND_TIMEOUT_S),
        "CACHE_BUDGET_BYTES": str(CACHE_BUDGET_BYTES),
    }
    return ServiceProcess([console_script("p1-query"), "serve", "--port", str(port)], env, port)


@pytest.fixture(scope="session")
def stack(hostile_database: str, redis_url: str, redis_client: object) -> Iterator[Stack]:
    """``redis_client``: the session's Redis database is emptied first (cache keys of an earlier run
    would answer for this run's new database)."""
    ingest = ingest_process(hostile_database, redis_url).start(wait=False)
    query = query_process(hostile_database, redis_url).start(wait=False)
    try:
        ingest.wait_ready()
        query.wait_ready()
        with (
            httpx.Client(base_url=ingest.base_url, timeout=30) as to_ingest,
            httpx.Client(base_url=query.base_url, timeout=30) as to_query,
        ):
            yield Stack(ingest, query, hostile_database, redis_url, to_ingest, to_query)
    finally:
        codes = (query.stop(), ingest.stop())
    assert codes[0] in CLEAN_EXITS, query.logs()
    assert codes[1] in CLEAN_EXITS, ingest.logs()
    # Whatever the probes did: no traceback, and no secret in either log from start-up to shutdown.
    logs = {f"{p.argv[0]} log": p.log_path.read_bytes() for p in (ingest, query)}
    for where, text in logs.items():
        assert b"Traceback" not in text, where
    assert_no_secret(logs, SECRETS)
