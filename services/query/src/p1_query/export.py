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
import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from p1_query.buckets import estimate_points, iter_boundaries, source_for
from p1_query.costs import point_costs, with_costs
from p1_query.db import Acquire, Conn, DbTimer
from p1_query.fields import POINT_FIELDS
from p1_query.forms import csv_rows, ndjson_rows
from p1_query.groups import DailyZone, fetch_group_columns
from p1_query.plans import Plan, device_plans
from p1_query.samples import RAW_EXPORT_COLUMNS, RAW_EXPORT_SQL
from p1_query.series import build_points, local_bounds, point_rows
from p1_query.volumes import fetch_volumes
from p1_servicekit.errors import FieldError, Unprocessable

Format = Literal["csv", "ndjson"]
PAGE_ROWS: Final = 5000
FLUSH_ROWS: Final = 500
CHUNK: Final = 1000
# A month of 1 s readings (2.7 million rows, ~0.5 GB of CSV) per request at most.
RAW_MAX_DAYS: Final = 31
# 15 min: ~2.8 years; 1 h: ~11 years; 1 d: the whole supported range.
MAX_BUCKETS: Final = 100_000
# PostgreSQL keeps timestamps in microseconds: the next page starts right after the last row's ts.
_TICK: Final = timedelta(microseconds=1)
MEDIA_TYPES: Final = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


def filename(device_id: str, bucket: str, start: datetime, end: datetime, fmt: Format) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    return f"{device_id}_{bucket}_{start.astimezone(UTC):{stamp}}_{end.astimezone(UTC):{stamp}}.{fmt}"


def check_export_size(start: datetime, end: datetime, bucket: str) -> None:
    """Refuses, before any work, a range larger than one export may cover, saying how to page."""
    paging = "export longer ranges as consecutive requests, each start the previous end"
    if bucket == "raw":
        if end - start > timedelta(days=RAW_MAX_DAYS):
            message = f"a raw export covers at most {RAW_MAX_DAYS} days; {paging}"
            raise Unprocessable([FieldError(("query", "end"), message, "export_too_large")])
    elif estimate_points(start, end, bucket) > MAX_BUCKETS:
        message = f"an export holds at most {MAX_BUCKETS} buckets ({bucket} here); {paging}"
        raise Unprocessable([FieldError(("query", "end"), message, "export_too_large")])


class Encoder:
    """Rows as CSV (a null is an empty cell) or NDJSON, times and numbers as every answer writes them
    (``forms``)."""

    def __init__(self, fmt: Format, columns: Sequence[str]) -> None:
        self.fmt = fmt
        self.columns = tuple(columns)

    def header(self) -> bytes:
        return (",".join(self.columns) + "\r\n").encode() if self.fmt == "csv" else b""

    def rows(self, rows: Sequence[Sequence[object]]) -> bytes:
        return csv_rows(rows) if self.fmt == "csv" else ndjson_rows(self.columns, rows)


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
        timeout_ms = str(max(1, round(self.timeout_s * 1000)))
        async with self.gate, self.acquire() as conn, conn.transaction(readonly=True), self.db.time("export"):
            await conn.execute(
                "SELECT set_config('statement_timeout', $1, true),"
                " set_config('idle_in_transaction_session_timeout', $1, true)",
                timeout_ms,
            )
            yield conn


async def raw_export(
    reads: PageReader, device_id: str, start: datetime, end: datetime, fmt: Format
) -> AsyncGenerator[bytes, None]:
    encoder = Encoder(fmt, RAW_EXPORT_COLUMNS)
    yield encoder.header()
    since = start
    while since < end:
        async with reads.page() as conn:
            page = await conn.fetch(RAW_EXPORT_SQL, device_id, since, end, PAGE_ROWS)
        # The connection is back in the pool: the client may now take as long as it is allowed to.
        for i in range(0, len(page), FLUSH_ROWS):
            yield encoder.rows([tuple(row) for row in page[i : i + FLUSH_ROWS]])
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
    encoder = Encoder(fmt, POINT_FIELDS)
    yield encoder.header()
    boundaries = iter_boundaries(start, end, bucket, tz)
    chunk = list(itertools.islice(boundaries, CHUNK + 1))
    plans: list[Plan] | None = None  # read once, with the first page
    while len(chunk) >= 2:
        async with reads.page() as conn:
            if plans is None:
                plans = await device_plans(conn, device_id)
            source = source_for(bucket, chunk, await daily.get(conn))
            groups = await fetch_group_columns(conn, device_id, source, chunk)
            volumes = await fetch_volumes(conn, device_id, source, chunk)
            points = build_points(groups, volumes, chunk, local_bounds(chunk, tz))
            costs = await point_costs(conn, device_id, plans, bucket, chunk, points)
        # Released before writing and yielding the chunk.
        rows = point_rows(with_costs(points, costs))
        for i in range(0, len(rows), FLUSH_ROWS):
            yield encoder.rows(rows[i : i + FLUSH_ROWS])
        # The next chunk starts where this one ended.
        chunk = [chunk[-1], *itertools.islice(boundaries, CHUNK)]
