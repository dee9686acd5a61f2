"""What one export may cost: its size (422 naming the limit), its page reads (keyset pages, each in a
short bounded transaction), the exports running at once (429 with Retry-After), and how long its client
may stall it or the database may take. Real query processes over HTTP, real PostgreSQL and Redis."""

import asyncio
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from query_probes import exports, exports_active, stalled_get
from query_scenes import BULK_DEVICE, BULK_ROWS, BULK_START, query_env

from p1_contracts.timeform import instant
from p1_query.db import DbTimer
from p1_query.export import MAX_BUCKETS, PAGE_ROWS, RAW_MAX_DAYS, PageReader, check_export_size
from p1_servicekit.errors import Unprocessable
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port, logged, wait_until

EXPORT = f"/v1/devices/{BULK_DEVICE}/export"
WHOLE = {"start": BULK_START.isoformat(), "end": (BULK_START + timedelta(seconds=BULK_ROWS)).isoformat()}
SEND_TIMEOUT_S = 2


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _csv_times(text: str) -> list[str]:
    lines = text.splitlines()
    assert lines[0].startswith("ts,power_w,")
    return [line.split(",", 1)[0] for line in lines[1:]]


# ---- pages ------------------------------------------------------------------------------------------


def test_raw_export_pages_through_the_range_exactly(api: ServiceProcess, bulk: str) -> None:
    """60,000 readings are 12 pages: every reading once, in order, none lost at a page boundary; two
    consecutive requests (the second's start the first's end) give the same rows as one."""
    whole = httpx.get(api.base_url + EXPORT, params=WHOLE, headers=_auth("tok-all"), timeout=60)
    assert whole.status_code == 200
    times = _csv_times(whole.text)
    assert BULK_ROWS > 10 * PAGE_ROWS
    expected = [instant(BULK_START + timedelta(seconds=k)) for k in range(BULK_ROWS)]
    assert times == expected
    middle = (BULK_START + timedelta(seconds=PAGE_ROWS * 3, milliseconds=500)).isoformat()
    halves = [
        httpx.get(api.base_url + EXPORT, params=p, headers=_auth("tok-all"), timeout=60)
        for p in ({**WHOLE, "end": middle}, {**WHOLE, "start": middle})
    ]
    assert [len(_csv_times(h.text)) for h in halves] == [PAGE_ROWS * 3 + 1, BULK_ROWS - PAGE_ROWS * 3 - 1]
    assert _csv_times(halves[0].text) + _csv_times(halves[1].text) == expected


def test_raw_ndjson_across_a_page_boundary(api: ServiceProcess, bulk: str) -> None:
    end = BULK_START + timedelta(seconds=PAGE_ROWS + 10)
    r = httpx.get(
        api.base_url + EXPORT,
        params={"start": BULK_START.isoformat(), "end": end.isoformat(), "format": "ndjson"},
        headers=_auth("tok-all"),
        timeout=30,
    )
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert len(rows) == PAGE_ROWS + 10
    assert rows[PAGE_ROWS]["ts"] == instant(BULK_START + timedelta(seconds=PAGE_ROWS))
    assert rows[0]["power_w"] == 500.0
    assert rows[0]["import_t1_kwh"] is None


# ---- size -------------------------------------------------------------------------------------------


def test_one_export_is_bounded_in_size_with_a_422_that_says_how_to_page(api: ServiceProcess) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cases = [
        ("raw", start + timedelta(days=RAW_MAX_DAYS, microseconds=1), f"at most {RAW_MAX_DAYS} days"),
        ("15m", start + timedelta(days=1100), f"at most {MAX_BUCKETS} buckets"),
        ("1h", start + timedelta(days=12 * 366), f"at most {MAX_BUCKETS} buckets"),
    ]
    for bucket, end, says in cases:
        params = {"start": start.isoformat(), "end": end.isoformat(), "bucket": bucket}
        r = httpx.get(api.base_url + "/v1/devices/q-dst/export", params=params, headers=_auth("tok-all"))
        assert r.status_code == 422, (bucket, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        error = r.json()["errors"][0]
        assert error["loc"] == ["query", "end"]
        assert says in error["msg"]
        assert "each start the previous end" in error["msg"]
    # Exactly the limit is allowed: q-dst's 2026 readings in one 31-day raw export.
    ok = {"start": "2026-03-15T00:00:00Z", "end": "2026-04-15T00:00:00Z"}
    r = httpx.get(api.base_url + "/v1/devices/q-dst/export", params=ok, headers=_auth("tok-all"), timeout=30)
    assert r.status_code == 200
    assert len(r.text.splitlines()) == 1 + 26 * 60 + 1


def test_export_size_limits_at_their_boundaries() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    check_export_size(start, start + timedelta(days=RAW_MAX_DAYS), "raw")
    check_export_size(start, start + timedelta(days=1000), "15m")  # 96,000 quarters
    check_export_size(start, datetime(2099, 12, 31, tzinfo=UTC), "1d")  # the whole range by day
    with pytest.raises(Unprocessable):
        check_export_size(start, start + timedelta(days=RAW_MAX_DAYS, seconds=1), "raw")
    with pytest.raises(Unprocessable):
        check_export_size(start, start + timedelta(minutes=15 * MAX_BUCKETS), "15m")


# ---- page reads -------------------------------------------------------------------------------------


async def test_a_page_read_is_bounded_by_postgresql_and_leaves_the_connection_clean(
    database_url: str,
) -> None:
    from prometheus_client import CollectorRegistry

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    assert pool is not None
    reads = PageReader(
        lambda: pool.acquire(timeout=5), asyncio.Semaphore(1), DbTimer(CollectorRegistry()), 0.2
    )
    try:
        async with reads.page() as conn:
            assert await conn.fetchval("SHOW statement_timeout") == "200ms"
            assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "200ms"
            assert await conn.fetchval("SHOW transaction_read_only") == "on"
        with pytest.raises(asyncpg.QueryCanceledError):
            async with reads.page() as conn:
                await conn.execute("SELECT pg_sleep(2)")
        async with pool.acquire() as conn:  # the same (only) connection, back to its defaults
            assert await conn.fetchval("SHOW statement_timeout") == "0"
            assert await conn.fetchval("SHOW transaction_read_only") == "off"
    finally:
        await pool.close()


# ---- exports at once, stalls, and the database taking too long ----------------------------------------


@pytest.fixture(scope="module")
def limited(bulk: str, redis_url: str) -> Iterator[ServiceProcess]:
    """Two exports per token, three in all; a client may stall 2 s; a statement may take 1 s."""
    port = free_port()
    env = {
        **query_env(bulk, redis_url),
        "READ_TOKENS": "tok-a:*,tok-b:*",
        "EXPORT_MAX_PER_TOKEN": "2",
        "EXPORT_MAX_PER_PROCESS": "3",
        "EXPORT_SEND_TIMEOUT_S": str(SEND_TIMEOUT_S),
        "EXPORT_STATEMENT_TIMEOUT_S": "1",
    }
    proc = ServiceProcess([console_script("p1-query"), "serve", "--port", str(port)], env, port).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def _refused(base_url: str, token: str) -> httpx.Response:
    r = httpx.get(base_url + EXPORT, params=WHOLE, headers=_auth(token), timeout=10)
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) >= 1
    return r


def test_exports_per_token_and_per_process_then_the_stalled_ones_are_cut_off(limited: ServiceProcess) -> None:
    base = limited.base_url
    slow_before = exports(base, "slow_client")
    sockets: list[socket.socket] = []
    try:
        sockets += [stalled_get(limited.port, EXPORT, WHOLE, "tok-a") for _ in range(2)]
        wait_until(lambda: exports_active(base) == 2, 30, "token a's two exports")
        assert "2 exports are in progress for this token" in _refused(base, "tok-a").json()["detail"]
        sockets.append(stalled_get(limited.port, EXPORT, WHOLE, "tok-b"))
        wait_until(lambda: exports_active(base) == 3, 30, "token b's export")
        assert "3 exports are in progress for this server" in _refused(base, "tok-b").json()["detail"]
        wait_until(
            lambda: exports_active(base) == 0 and exports(base, "slow_client") - slow_before == 3,
            SEND_TIMEOUT_S + 60,
            "the stalled exports to be cut off",
        )
        # The clients that never read get a body cut short: a socket that reads now sees no end.
        sockets[0].settimeout(5)
        received = b""
        try:
            while chunk := sockets[0].recv(1 << 20):
                received += chunk
        except ConnectionResetError:
            # Cut off with a reset rather than a FIN: what depends on how much of the body was still
            # unsent when the export was aborted (wider rows leave more). Either way it has no end.
            pass
        assert received.startswith(b"HTTP/1.1 200")
        assert not received.endswith(b"0\r\n\r\n")  # the last chunk of a complete chunked body
    finally:
        for s in sockets:
            s.close()
    r = httpx.get(base + EXPORT, params=WHOLE, headers=_auth("tok-a"), timeout=60)
    assert (r.status_code, len(r.text.splitlines())) == (200, 1 + BULK_ROWS)
    logs = limited.logs()
    assert logged(logs, "export aborted: the client took no data", send_timeout_s=2), logs
    assert "Traceback" not in logs
    assert "without completing response" not in logs


def test_a_client_that_goes_away_frees_its_export(limited: ServiceProcess) -> None:
    base = limited.base_url
    gone_before = exports(base, "disconnected")
    client = stalled_get(limited.port, EXPORT, WHOLE, "tok-b")
    try:
        wait_until(lambda: exports_active(base) == 1, 30, "the export to start")
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        client.close()
    wait_until(
        lambda: exports_active(base) == 0 and exports(base, "disconnected") - gone_before == 1,
        10,
        "the abandoned export to end as disconnected (not cut off by the send timeout)",
    )


async def _lock_samples(database_url: str, held: asyncio.Event, release: asyncio.Event) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE samples IN ACCESS EXCLUSIVE MODE")
            held.set()
            await release.wait()
    finally:
        await conn.close()


async def test_a_statement_over_the_timeout_cuts_the_export_short_and_holds_nothing(
    limited: ServiceProcess, bulk: str
) -> None:
    """Samples locked: the first page waits for the lock until EXPORT_STATEMENT_TIMEOUT_S (1 s) ends it.
    The status was sent already, so the body is cut short; a warning, no traceback; nothing is held."""
    held, release = asyncio.Event(), asyncio.Event()
    locker = asyncio.create_task(_lock_samples(bulk, held, release))
    await asyncio.wait_for(held.wait(), 10)
    try:
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("GET", limited.base_url + EXPORT, params=WHOLE, headers=_auth("tok-a")) as r,
        ):
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                await r.aread()
    finally:
        release.set()
        await locker
    logs = limited.logs()
    assert "export aborted: database unavailable" in logs
    assert "Traceback" not in logs
    assert "without completing response" not in logs
    wait_until(lambda: exports_active(limited.base_url) == 0, 10, "the export's slot")
    conn = await asyncpg.connect(bulk)
    try:
        busy = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state LIKE 'idle in transaction%'"
        )
    finally:
        await conn.close()
    assert busy == 0
