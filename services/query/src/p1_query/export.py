"""Streamed exports in constant memory.

``raw`` reads a server-side cursor (asyncpg fetches ``PREFETCH`` rows at a time inside a read-only
transaction); the bucketed exports walk the range ``CHUNK`` buckets at a time through the series code,
with the boundaries generated lazily. Either way memory does not grow with the range. Bytes are
yielded in blocks of about ``FLUSH_ROWS`` rows so that neither the socket nor the event loop is flooded
with tiny writes.
"""

import csv
import io
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

import asyncpg

from .buckets import iter_boundaries, source_for
from .series import build_points
from .store import RAW_EXPORT_COLUMNS, RAW_EXPORT_SQL, DailyZone, DbTimer, fetch_groups

Format = Literal["csv", "ndjson"]
PREFETCH: Final = 2000
FLUSH_ROWS: Final = 1000
CHUNK: Final = 1000
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


def _plain(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class Encoder:
    def __init__(self, fmt: Format, columns: Sequence[str]) -> None:
        self.fmt = fmt
        self.columns = tuple(columns)

    def header(self) -> bytes:
        return (",".join(self.columns) + "\r\n").encode() if self.fmt == "csv" else b""

    def rows(self, rows: Iterable[Sequence[object]]) -> bytes:
        if self.fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerows([("" if v is None else _plain(v)) for v in row] for row in rows)
            return buf.getvalue().encode()
        return "".join(
            json.dumps(dict(zip(self.columns, map(_plain, row), strict=True)), separators=(",", ":")) + "\n"
            for row in rows
        ).encode()


async def raw_export(
    acquire: Callable[[], "asyncpg.pool.PoolAcquireContext"],
    db: DbTimer,
    device_id: str,
    start: datetime,
    end: datetime,
    fmt: Format,
) -> AsyncIterator[bytes]:
    enc = Encoder(fmt, RAW_EXPORT_COLUMNS)
    yield enc.header()
    async with acquire() as conn, conn.transaction(readonly=True):
        block: list[Sequence[object]] = []
        async with db.time("export"):
            cursor = conn.cursor(RAW_EXPORT_SQL, device_id, start, end, prefetch=PREFETCH)
            async for record in cursor:
                block.append(tuple(record.values()))
                if len(block) >= FLUSH_ROWS:
                    yield enc.rows(block)
                    block.clear()
        if block:
            yield enc.rows(block)


async def bucket_export(
    acquire: Callable[[], "asyncpg.pool.PoolAcquireContext"],
    db: DbTimer,
    daily: DailyZone,
    device_id: str,
    start: datetime,
    end: datetime,
    bucket: str,
    tz: ZoneInfo,
    fmt: Format,
) -> AsyncIterator[bytes]:
    enc = Encoder(fmt, POINT_FIELDS)
    yield enc.header()
    boundaries = iter_boundaries(start, end, bucket, tz)
    chunk = list(itertools.islice(boundaries, CHUNK + 1))
    while len(chunk) >= 2:
        async with acquire() as conn, db.time("export"):
            source = source_for(bucket, chunk, await daily.get(conn))
            groups = await fetch_groups(conn, device_id, source, chunk)
        points = build_points(groups, chunk, tz)
        yield enc.rows([tuple(getattr(p, f) for f in POINT_FIELDS) for p in points])
        # The next chunk starts where this one ended.
        chunk = [chunk[-1], *itertools.islice(boundaries, CHUNK)]
