"""``p1-ingest maintain``: partitions ahead and raw-data retention (rollups are kept forever).

Plain PostgreSQL: monthly (UTC) partitions of ``samples`` are created for this month and the next
``MONTHS_AHEAD``, and for every month that has readings waiting in ``samples_default`` (a backlog
from before its partition existed; they are moved into it); partitions wholly older than
RAW_RETENTION_DAYS are dropped, and old rows of the default partition deleted.
TimescaleDB (detected): the retention policy is (re)set to RAW_RETENTION_DAYS; chunks, compression
and dropping are TimescaleDB's own jobs.

Safe to run concurrently (an advisory lock serialises runs) and as often as wanted (idempotent).
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

import asyncpg
from pydantic import Field

from p1_servicekit.settings import ServiceSettings

log = logging.getLogger("p1.maintain")

MONTHS_AHEAD: Final = 3
# "p1mt" in ASCII; distinct from the migration lock.
ADVISORY_LOCK_KEY: Final = 0x70316D74
_PARTITION: Final = re.compile(r"^samples_(\d{4})_(\d{2})$")


class MaintainSettings(ServiceSettings):
    raw_retention_days: int = Field(default=400, ge=1)


@dataclass
class MaintainReport:
    timescaledb: bool
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    default_rows_deleted: int = 0


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, 1)


async def maintain(database_url: str, retention_days: int, now: datetime | None = None) -> MaintainReport:
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    conn = await asyncpg.connect(database_url)
    try:
        timescale = bool(
            await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
        )
        report = MaintainReport(timescale)
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            if timescale:
                # Reviewed SQL for the TimescaleDB branch (not exercised by CI, which has no extension).
                async with conn.transaction():
                    await conn.execute("SELECT remove_retention_policy('samples', if_exists => true)")
                    await conn.execute(
                        "SELECT add_retention_policy('samples', make_interval(days => $1))", retention_days
                    )
                return report
            this_month = date(now.year, now.month, 1)
            wanted = {_add_months(this_month, k) for k in range(MONTHS_AHEAD + 1)}
            backlog = await conn.fetch(
                """SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC')::date AS month
                   FROM samples_default WHERE ts >= $1""",
                cutoff,
            )
            wanted |= {r["month"] for r in backlog}
            for month in sorted(wanted):
                if _add_months(month, 1) <= cutoff.date():
                    continue  # wholly beyond retention: its rows are deleted below instead
                async with conn.transaction():
                    if await conn.fetchval("SELECT p1_ensure_samples_partition($1)", month):
                        report.created.append(f"samples_{month:%Y_%m}")
            parts = await conn.fetch(
                """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = 'samples'::regclass ORDER BY 1"""
            )
            for row in parts:
                m = _PARTITION.match(row["relname"])
                if m is None:
                    continue
                end = datetime(*_add_months(date(int(m[1]), int(m[2]), 1), 1).timetuple()[:3], tzinfo=UTC)
                if end <= cutoff:
                    # Identifier from the catalogue, matched by the pattern above.
                    await conn.execute(f'DROP TABLE "{row["relname"]}"')
                    report.dropped.append(row["relname"])
            status = await conn.execute("DELETE FROM samples_default WHERE ts < $1", cutoff)
            report.default_rows_deleted = int(status.split()[-1])
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()
    log.info(
        "maintenance done",
        extra={
            "partitions_created": report.created,
            "partitions_dropped": report.dropped,
            "rows_deleted": report.default_rows_deleted,
        },
    )
    return report
