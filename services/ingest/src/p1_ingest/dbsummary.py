"""What a database holds, in one line: ``backup`` prints it for its snapshot and ``restore`` for the
restored database, so an operator compares the two. Cheap on any size: it reads ``devices`` and the
daily rollup (about 365 rows per device and year), never the raw table."""

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from p1_contracts.timeform import instant

_SQL = """
SELECT (SELECT max(version) FROM schema_migrations) AS schema_version,
       (SELECT count(*) FROM devices) AS devices,
       (SELECT coalesce(sum(n), 0) FROM rollup_1d) AS good_readings,
       (SELECT max(last_seen) FROM devices) AS newest,
       (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb"""
_CHUNKS = """
SELECT count(*) AS chunks, count(*) FILTER (WHERE is_compressed) AS compressed
FROM timescaledb_information.chunks
WHERE hypertable_schema = current_schema() AND hypertable_name = 'samples'"""


@dataclass(frozen=True)
class DatabaseSummary:
    schema_version: int
    devices: int
    good_readings: int  # folded into the rollups; suspect and glitch readings are not counted
    newest_reading: datetime | None
    timescaledb: str | None  # the extension's version, None on plain PostgreSQL
    chunks: int = 0
    compressed_chunks: int = 0

    def line(self) -> str:
        newest = instant(self.newest_reading) if self.newest_reading else "none"
        storage = (
            f"TimescaleDB {self.timescaledb}, {self.chunks} chunk(s), {self.compressed_chunks} compressed"
            if self.timescaledb
            else "plain PostgreSQL (monthly partitions)"
        )
        return (
            f"schema version {self.schema_version}, {self.devices} device(s), {self.good_readings} good "
            f"reading(s), newest reading {newest}; {storage}"
        )


async def summarise(conn: "asyncpg.Connection[asyncpg.Record]") -> DatabaseSummary:
    """The summary as ``conn``'s snapshot sees it (the tables must exist: a p1 database)."""
    row = await conn.fetchrow(_SQL)
    assert row is not None
    chunks = compressed = 0
    if row["timescaledb"] is not None:
        counts = await conn.fetchrow(_CHUNKS)
        assert counts is not None
        chunks, compressed = counts["chunks"], counts["compressed"]
    return DatabaseSummary(
        schema_version=row["schema_version"] or 0,
        devices=row["devices"],
        good_readings=int(row["good_readings"]),
        newest_reading=row["newest"],
        timescaledb=row["timescaledb"],
        chunks=chunks,
        compressed_chunks=compressed,
    )


async def is_p1_database(conn: "asyncpg.Connection[asyncpg.Record]") -> bool:
    """True when the database has p1's schema (``schema_migrations`` and ``samples``)."""
    return bool(
        await conn.fetchval(
            "SELECT to_regclass('schema_migrations') IS NOT NULL AND to_regclass('samples') IS NOT NULL"
        )
    )
