"""Streamed exports in constant memory, holding nothing while the client reads.

A slow or stalled client must not hold the database: each page of rows is read with a connection taken
from the pool for that page only (``PageReader``), in a short read-only transaction whose statements are
bounded by ``statement_timeout`` (and ``idle_in_transaction_session_timeout``), and the connection is back
in the pool before the page's bytes are yielded. ``raw`` pages by keyset on ``ts`` (``PAGE_ROWS`` rows
each, unique per device: the primary key); the bucketed exports walk the range ``CHUNK`` buckets at a time
through the series code, with the boundaries generated lazily. Bytes are yielded in blocks of
``FLUSH_ROWS`` rows so that the event loop is never held for long by one export.

One request covers at most ``RAW_MAX_DAYS`` of raw readings or ``MAX_BUCKETS`` buckets; longer ranges
are exported as consecutive requests, each ``start`` the previous ``end`` (``check_export_size``).
"""

import asyncio
import csv
import io
import itertools
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

import asyncpg

from p1_servicekit.errors import FieldError, Unprocessable

from .buckets import estimate_points, iter_boundaries, source_for
from .series import build_points
from .store import RAW_EXPORT_COLUMNS, RAW_EXPORT_SQL, Conn, DailyZone, DbTimer, fetch_groups

Format = Literal["csv", "ndjson"]
Acquire = Callable[[], "asyncpg.pool.PoolAcquireContext"]
PAGE_ROWS: Final = 5000
FLUSH_ROWS: Final = 500
CHUNK: Final = 1000
# A month of 1 s readings (2.7 million rows, ~0.5 GB of CSV) per request at most.
RAW_MAX_DAYS: Final = 31
# 15 min: ~2.8 years; 1 h: ~11 years; 1 d: the whole supported range.
MAX_BUCKETS: Final = 100_000
# PostgreSQL keeps timestamps in microseconds: the next page starts right after the last row's ts.
_TICK: Final = timedelta(microseconds=1)
POINT_FIELDS: Final = (
    "start",
    "end",
    "samples",
    "power_avg_w",
    "power_min_w",
    "power_max_w",
    "import_kwh",
    "export_kwh",
    "gas_m3",
    "water_m3",
)
MEDIA_TYPES: Final = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


def filename(device_id: str, bucket: str, start: datetime, end: datetime, fmt: Format) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    return f"{device_id}_{bucket}_{start.astimezone(UTC):{stamp}}_{end.astimezone(UTC):{stamp}}.{fmt}"


def check_export_size(start: datetime, end: datetime, bucket: str) -> None:
    """Refuses, before any work, a range larger than one export may cover, saying how to page."""
    paging = "export longer ranges as consecutive requests, each start the previous end"
    if bucket == "raw":
        if end - start > timedelta(days=RAW_MAX_DAYS):
            msg = f"a raw export covers at most {RAW_MAX_DAYS} days; {paging}"
            raise Unprocessable([FieldError(("query", "end"), msg, "export_too_large")])
    elif estimate_points(start, end, bucket) > MAX_BUCKETS:
        msg = f"an export holds at most {MAX_BUCKETS} buckets ({bucket} here); {paging}"
        raise Unprocessable([FieldError(("query", "end"), msg, "export_too_large")])


def _plain(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class Encoder:
    """Rows as CSV (``None`` is an empty field) or NDJSON; ``times`` are the columns holding datetimes,
    the only ones that need converting (checking every value's type costs more than the encoding)."""

    def __init__(self, fmt: Format, columns: Sequence[str], times: Iterable[str]) -> None:
        self.fmt = fmt
        self.columns = tuple(columns)
        wanted = set(times)
        self._times = tuple(i for i, c in enumerate(self.columns) if c in wanted)

    def header(self) -> bytes:
        return (",".join(self.columns) + "\r\n").encode() if self.fmt == "csv" else b""

    def _converted(self, row: Sequence[object]) -> list[object]:
        out = list(row)
        for i in self._times:
            out[i] = _plain(out[i])
        return out

    def rows(self, rows: Iterable[Sequence[object]]) -> bytes:
        plain = [self._converted(row) for row in rows]
        if self.fmt == "csv":
            buf = io.StringIO()
            csv.writer(buf).writerows(plain)
            return buf.getvalue().encode()
        return "".join(
            json.dumps(dict(zip(self.columns, row, strict=True)), separators=(",", ":")) + "\n"
            for row in plain
        ).encode()


@dataclass(frozen=True)
class PageReader:
    """How every export reads a page. ``gate`` admits at most half the pool's connections to exports at
    once, however many are in progress, so the other half is always there for realtime, series and
    capacity. Each page is a read-only transaction whose statements, and any idleness inside it,
    PostgreSQL itself ends after ``timeout_s`` (the last line, should anything stall)."""

    acquire: Acquire
    gate: asyncio.Semaphore
    db: DbTimer
    timeout_s: float

    @asynccontextmanager
    async def page(self) -> AsyncIterator[Conn]:
        ms = str(max(1, round(self.timeout_s * 1000)))
        async with self.gate, self.acquire() as conn, conn.transaction(readonly=True), self.db.time("export"):
            await conn.execute(
                "SELECT set_config('statement_timeout', $1, true),"
                " set_config('idle_in_transaction_session_timeout', $1, true)",
                ms,
            )
            yield conn


async def raw_export(
    reads: PageReader, device_id: str, start: datetime, end: datetime, fmt: Format
) -> AsyncGenerator[bytes, None]:
    enc = Encoder(fmt, RAW_EXPORT_COLUMNS, ("ts", "month_peak_ts", "gas_ts", "water_ts"))
    yield enc.header()
    since = start
    while since < end:
        async with reads.page() as conn:
            page = await conn.fetch(RAW_EXPORT_SQL, device_id, since, end, PAGE_ROWS)
        # The connection is back in the pool: the client may now take as long as it is allowed to.
        for i in range(0, len(page), FLUSH_ROWS):
            yield enc.rows(tuple(r.values()) for r in page[i : i + FLUSH_ROWS])
        if len(page) < PAGE_ROWS:
            return
        since = page[-1]["ts"] + _TICK


async def bucket_export(
    reads: PageReader,
    daily: DailyZone,
    device_id: str,
    start: datetime,
    end: datetime,
    bucket: str,
    tz: ZoneInfo,
    fmt: Format,
) -> AsyncGenerator[bytes, None]:
    enc = Encoder(fmt, POINT_FIELDS, ("start", "end"))
    yield enc.header()
    boundaries = iter_boundaries(start, end, bucket, tz)
    chunk = list(itertools.islice(boundaries, CHUNK + 1))
    while len(chunk) >= 2:
        async with reads.page() as conn:
            source = source_for(bucket, chunk, await daily.get(conn))
            groups = await fetch_groups(conn, device_id, source, chunk)
        # Released before building and yielding the chunk.
        points = build_points(groups, chunk, tz)
        rows = [tuple(getattr(p, f) for f in POINT_FIELDS) for p in points]
        for i in range(0, len(rows), FLUSH_ROWS):
            yield enc.rows(rows[i : i + FLUSH_ROWS])
        # The next chunk starts where this one ended.
        chunk = [chunk[-1], *itertools.islice(boundaries, CHUNK)]
