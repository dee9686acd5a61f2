"""What every hostile probe needs: the tokens and secrets of the stack, readings a real meter could send,
problem+json checks, "nothing was written" (every table's row count and the device's latest reading in
Redis, before and after) and "the device still works" (a good upload is stored, GET /v1/devices is 200).

The stack (``conftest.stack``) is one real ``p1-ingest serve`` and one real ``p1-query serve`` on a
database of this suite's own, started once per session.
"""

import asyncio
import hashlib
import json
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
import httpx
import redis

from p1_contracts import timerange
from p1_servicekit.problems import PROBLEM_JSON, title_of
from p1_servicekit.testing import ServiceProcess

# One device per group of probes, so that no probe depends on what another left behind.
DEVICES: Final = (
    "h-range",
    "h-zero",
    "h-down",
    "h-33",
    "h-jump",
    "h-alternate",
    "h-late",
    "h-export",
    "h-input",
    "h-dup",
    "h-gzip",
    "h-slow",
    "h-flood",
    "h-overlap",
    "h-token",
    "h-other",
    "h-inject",
    "h-cache",
)
WRITE_TOKENS: Final = {d: f"hw-{d}-{hashlib.sha256(d.encode()).hexdigest()[:12]}" for d in DEVICES}
# A device whose token is configured only as its SHA-256 digest.
HASHED_DEVICE: Final = "h-hashed"
HASHED_WRITE: Final = "hw-hashed-4c1f9e0b77aa"
READ_ALL: Final = "hr-all-8d2e6b51c0f3"
READ_RANGE: Final = "hr-range-1a7c4e92db05"  # sees h-range only
READ_CACHE: Final = "hr-cache-6e0b3f18a2c4"  # a second reader of h-cache, for the cache probe
DB_PASSWORD: Final = "hPgPw/+x%2F!3k"  # characters that URL-encode, as openssl rand -base64 makes
SECRETS: Final = (*WRITE_TOKENS.values(), HASHED_WRITE, READ_ALL, READ_RANGE, READ_CACHE, DB_PASSWORD)

HEAD_TIMEOUT_S: Final = 1.5
BODY_TIMEOUT_S: Final = 2.0
RETRY_AFTER_S: Final = 7
EXPORT_SEND_TIMEOUT_S: Final = 8  # long enough to measure while every export is stalled
# The first failure: ten stalled exports pinned the pool. Fifty, with 60,000 raw readings each,
# are services/query/tests/test_export_stall.py (each stalled export makes ~1.7 MB before it blocks).
STALLED_EXPORTS: Final = 10
CACHE_BUDGET_BYTES: Final = 64 * 1024


def device_tokens() -> str:
    digest = hashlib.sha256(HASHED_WRITE.encode()).hexdigest()
    return ",".join([*(f"{t}:{d}" for d, t in WRITE_TOKENS.items()), f"sha256:{digest}:{HASHED_DEVICE}"])


def read_tokens() -> str:
    digest = hashlib.sha256(READ_CACHE.encode()).hexdigest()
    return f"{READ_ALL}:*,{READ_RANGE}:h-range,sha256:{digest}:h-cache|h-export"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Stack:
    """The two services, and one HTTP client for each (a client per request would spend ~40 ms on its
    TLS context alone)."""

    ingest: ServiceProcess
    query: ServiceProcess
    database_url: str
    redis_url: str
    to_ingest: httpx.Client
    to_query: httpx.Client


# --- readings ------------------------------------------------------------------------------------


@dataclass
class Meter:
    """A device's readings as a real meter makes them: time moves on, counters never go down and grow
    by what the power delivered. Starts two hours ago, so that every reading is in the past."""

    device_id: str
    ts: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    )
    import_kwh: float = 1000.0
    step_s: int = 10
    power_w: float = 360.0  # 0.001 kWh per 10 s step

    def readings(self, count: int = 1) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            self.ts += timedelta(seconds=self.step_s)
            self.import_kwh = round(self.import_kwh + self.power_w * self.step_s / 3.6e6, 6)
            out.append(
                {
                    "ts": self.ts.isoformat(),
                    "power_w": self.power_w,
                    "import_kwh": self.import_kwh,
                    "export_kwh": 0.0,
                }
            )
        return out


def batch(device_id: str, samples: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"device_id": device_id, "samples": samples, **extra}).encode()


def post(
    stack: Stack, body: bytes, token: str | None, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    sent = {"Content-Type": "application/json", **(auth(token) if token else {}), **(headers or {})}
    return stack.to_ingest.post("/v1/samples", content=body, headers=sent)


def get(
    stack: Stack, path: str, params: Mapping[str, str] | None = None, token: str = READ_ALL
) -> httpx.Response:
    return stack.to_query.get(path, params=params, headers=auth(token))


# --- answers -------------------------------------------------------------------------------------


def assert_problem(r: httpx.Response, status: int, loc: list[Any] | None = None) -> dict[str, Any]:
    """The answer is problem+json of ``status`` (title, status, detail); with ``loc``, one of its
    ``errors`` names that field. Returns the body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON, r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert body["title"] == title_of(status)
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert "Traceback" not in r.text
    if loc is None:
        assert "errors" not in body or status == 422, body
    else:
        assert [e["loc"] for e in body["errors"] if e["loc"] == loc], (loc, body)
        assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"]), body
    return body


@dataclass(frozen=True)
class Raw:
    """An answer read off a raw socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == PROBLEM_JSON, self
        body: dict[str, Any] = json.loads(self.body)
        assert body["status"] == self.status
        assert body["title"] == title_of(self.status)
        return body


def parse_raw(answer: bytes) -> Raw:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return Raw(int(status_line.split(" ")[1]), headers, body)


def read_all(s: socket.socket, max_reads: int = 10_000) -> bytes:
    answer = b""
    for _ in range(max_reads):
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def exchange(port: int, data: bytes, timeout_s: float = 15) -> Raw:
    """Sends ``data`` on a fresh connection and reads until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(data)
        return parse_raw(read_all(s))


# --- storage -------------------------------------------------------------------------------------

_TABLES_SQL: Final = """
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1"""


async def _counts(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        tables = [r["relname"] for r in await conn.fetch(_TABLES_SQL)]
        return {t: int(await conn.fetchval(f'SELECT count(*) FROM "{t}"')) for t in tables}
    finally:
        await conn.close()


def table_counts(stack: Stack) -> dict[str, int]:
    """Rows in every table of the schema (partitions counted in their parent)."""
    return asyncio.run(_counts(stack.database_url))


def latest_reading(stack: Stack, device_id: str) -> bytes | None:
    with redis.Redis.from_url(stack.redis_url) as client:
        value = client.get(f"p1:latest:{device_id}")
    assert value is None or isinstance(value, bytes)
    return value


@contextmanager
def writes_nothing(stack: Stack, device_id: str | None = None) -> Iterator[None]:
    """Fails when the block changed the row count of any table, or the device's latest reading."""
    before = table_counts(stack)
    latest = latest_reading(stack, device_id) if device_id else None
    yield
    assert table_counts(stack) == before
    if device_id:
        assert latest_reading(stack, device_id) == latest


async def _rows(database_url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def rows(stack: Stack, sql: str, *args: Any) -> list[dict[str, Any]]:
    return asyncio.run(_rows(stack.database_url, sql, *args))


def still_works(stack: Stack, meter: Meter) -> None:
    """The device accepts a good upload (stored), and the device list answers with it in range."""
    r = post(
        stack, batch(meter.device_id, meter.readings(1)), WRITE_TOKENS.get(meter.device_id, HASHED_WRITE)
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "duplicates": 0}
    listed = get(stack, "/v1/devices")
    assert listed.status_code == 200, listed.text
    mine = [d for d in listed.json() if d["device_id"] == meter.device_id]
    assert len(mine) == 1, listed.json()
    for key in ("first_seen", "last_seen"):
        assert timerange.in_range(datetime.fromisoformat(mine[0][key])), mine[0]
