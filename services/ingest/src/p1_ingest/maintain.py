"""``p1-ingest maintain``: partitions ahead and raw-data retention (rollups are kept forever).

Plain PostgreSQL: monthly (UTC) partitions of ``samples`` are created for this month and the next
``MONTHS_AHEAD``, and for every month that has readings waiting in ``samples_default`` (a backlog
from before its partition existed; they are moved into it); partitions wholly older than
RAW_RETENTION_DAYS are dropped, and old rows of the default partition deleted.
TimescaleDB (detected): the retention policy of the ``samples`` hypertable is set to RAW_RETENTION_DAYS
(left alone when it already says so, so its job keeps its id and schedule), then the retention and the
compression policies (the latter from migration 0001) are run now, from this session: TimescaleDB's
scheduler runs them too, but where its runs fail the daily maintain still applies both, and says so.
The report counts the chunks dropped and compressed by this run.

Safe to run concurrently (an advisory lock serialises runs) and as often as wanted (idempotent).
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

import asyncpg

log = logging.getLogger(__name__)

MONTHS_AHEAD: Final = 3
# "p1mt" in ASCII; distinct from the migration lock.
ADVISORY_LOCK_KEY: Final = 0x70316D74
_PARTITION: Final = re.compile(r"^samples_(\d{4})_(\d{2})$")


@dataclass
class HypertableReport:
    """What ``maintain`` did and found on TimescaleDB."""

    retention_days: int
    retention_changed: bool  # False: the retention policy already said retention_days
    retention_job: int
    chunks_dropped: int  # by this run of the retention job
    compress_after: timedelta
    compression_job: int
    chunks_compressed: int  # by this run of the compression job
    chunks: int  # afterwards
    compressed_chunks: int
    # (job, last error) of the policies whose last run by TimescaleDB's own scheduler failed.
    failing_background_jobs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class MaintainReport:
    """What ``maintain`` did: partitions on plain PostgreSQL, or ``hypertable`` on TimescaleDB."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    default_rows_deleted: int = 0
    hypertable: HypertableReport | None = None

    def summary(self) -> str:
        """One line for the operator, in the terms of the storage in use."""
        h = self.hypertable
        if h is not None:
            policy = "set to" if h.retention_changed else "unchanged at"
            return (
                f"TimescaleDB hypertable samples: retention policy {policy} {h.retention_days} days "
                f"(job {h.retention_job}), run now: {h.chunks_dropped} chunk(s) dropped; compression policy "
                f"after {h.compress_after / timedelta(days=1):g} days (job {h.compression_job}), run now: "
                f"{h.chunks_compressed} chunk(s) compressed; "
                f"{h.chunks} chunk(s), {h.compressed_chunks} compressed"
            )
        return (
            f"partitions: created {self.created or 'none'}, dropped {self.dropped or 'none'}, "
            f"{self.default_rows_deleted} old row(s) deleted from samples_default"
        )

    def warnings(self) -> list[str]:
        if self.hypertable is None:
            return []
        return [
            f"TimescaleDB's background runs of {job} fail ({error}); maintain ran the policy itself"
            for job, error in self.hypertable.failing_background_jobs
        ]


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
        report = MaintainReport()
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            if timescale:
                report.hypertable = await _maintain_hypertable(conn, retention_days, cutoff)
            else:
                await _maintain_partitions(conn, report, cutoff, now)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()
    log.info(
        "maintenance done",
        extra={"storage": "timescaledb" if timescale else "partitions", "summary": report.summary()},
    )
    for warning in report.warnings():
        log.warning("maintenance warning", extra={"warning": warning})
    return report


# A policy job of the samples hypertable, its interval setting ($2: drop_after, compress_after), and its
# last run by TimescaleDB's scheduler (``run_job`` from a session leaves job_stats alone).
_POLICY: Final = """
SELECT j.job_id, (j.config->>$2)::interval AS after, s.last_run_status = 'Failed' AS failing,
       (SELECT e.err_message FROM timescaledb_information.job_errors e
         WHERE e.job_id = j.job_id ORDER BY e.start_time DESC LIMIT 1) AS last_error
FROM timescaledb_information.jobs j LEFT JOIN timescaledb_information.job_stats s USING (job_id)
WHERE j.proc_name = $1 AND j.hypertable_schema = current_schema() AND j.hypertable_name = 'samples'"""
# $1 the retention cutoff, $2 compress_after: what each policy's job would act on now (compression only
# what retention keeps).
_CHUNKS: Final = """
SELECT count(*)::int AS chunks, count(*) FILTER (WHERE is_compressed)::int AS compressed,
       count(*) FILTER (WHERE range_end <= $1)::int AS beyond_retention,
       count(*) FILTER (WHERE NOT is_compressed AND range_end <= now() - $2::interval
                               AND range_end > $1)::int AS to_compress
FROM timescaledb_information.chunks
WHERE hypertable_schema = current_schema() AND hypertable_name = 'samples'"""
RETENTION: Final = ("policy_retention", "drop_after")
COMPRESSION: Final = ("policy_compression", "compress_after")


async def policy_job(conn: "asyncpg.Connection[asyncpg.Record]", which: tuple[str, str]) -> asyncpg.Record:
    """The samples hypertable's policy job (RETENTION or COMPRESSION); it must exist."""
    row = await conn.fetchrow(_POLICY, *which)
    if row is None:
        raise RuntimeError(f"the samples hypertable has no {which[0]} job")
    return row


async def run_job(conn: "asyncpg.Connection[asyncpg.Record]", job: asyncpg.Record) -> None:
    # Run from this session, not left to the background scheduler alone: where the scheduler's runs
    # fail (seen with TimescaleDB 2.28.3 on PostgreSQL 15.20, "cannot drop portal"), the daily maintain
    # still applies both policies. Simple protocol (no parameters): the policies commit per chunk.
    await conn.execute(f"CALL run_job({int(job['job_id'])})")


async def _set_retention(conn: "asyncpg.Connection[asyncpg.Record]", days: int) -> bool:
    """Sets the retention policy to ``days``; returns False when it said so already (the job then keeps
    its id and schedule)."""
    current = await conn.fetchrow(_POLICY, *RETENTION)
    if current is not None and current["after"] == timedelta(days=days):
        return False
    async with conn.transaction():
        await conn.execute("SELECT remove_retention_policy('samples', if_exists => true)")
        await conn.execute("SELECT add_retention_policy('samples', make_interval(days => $1))", days)
    return True


async def _maintain_hypertable(
    conn: "asyncpg.Connection[asyncpg.Record]", days: int, cutoff: datetime
) -> HypertableReport:
    compression = await policy_job(conn, COMPRESSION)
    # Counted before a new policy exists: whoever drops or compresses meanwhile (this session or the
    # scheduler, which starts a new policy's job at once), the differences are this run's work.
    before = await conn.fetchrow(_CHUNKS, cutoff, compression["after"])
    changed = await _set_retention(conn, days)
    retention = await policy_job(conn, RETENTION)
    await run_job(conn, retention)  # first: no point compressing what is dropped
    await run_job(conn, compression)
    after = await conn.fetchrow(_CHUNKS, cutoff, compression["after"])
    assert before is not None
    assert after is not None
    return HypertableReport(
        retention_days=days,
        retention_changed=changed,
        retention_job=int(retention["job_id"]),
        chunks_dropped=before["beyond_retention"] - after["beyond_retention"],
        compress_after=compression["after"],
        compression_job=int(compression["job_id"]),
        chunks_compressed=before["to_compress"] - after["to_compress"],
        chunks=after["chunks"],
        compressed_chunks=after["compressed"],
        failing_background_jobs=[
            (f"job {j['job_id']} ({name})", j["last_error"] or "no error recorded")
            for name, j in ((RETENTION[0], retention), (COMPRESSION[0], compression))
            if j["failing"]
        ],
    )


async def _maintain_partitions(
    conn: "asyncpg.Connection[asyncpg.Record]", report: MaintainReport, cutoff: datetime, now: datetime
) -> None:
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
