"""What several ingest test modules check the storage with: the rollups recomputed from the raw rows,
``p1-ingest maintain`` as a process, and TimescaleDB's compression policy run on demand."""

import subprocess
from datetime import timedelta
from typing import Any, Final

from p1_ingest.maintain import COMPRESSION, policy_job, run_job
from p1_servicekit.testing import console_script, eventually

ROLLUP_COLS: Final = (
    "bucket, epoch, n, power_sum, power_min, power_max, power_import_sum, first_ts, last_ts, "
    "import_kwh_min, import_kwh_max, export_kwh_min, export_kwh_max, gas_m3_min, gas_m3_max, "
    "water_m3_min, water_m3_max, avg_power_15m_w, month_peak_w"
)


# rollup_1d holds the local days of the zone migration 0002 put in rollup_1d_zone.
BUCKETS: Final = (
    ("rollup_15m", "date_bin('15 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00')"),
    ("rollup_1h", "date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00')"),
    ("rollup_1d", "date_trunc('day', ts, 'Europe/Brussels')"),
)


def rollup_from_raw_sql(bucket: str, flagged: bool = True) -> str:
    """A rollup of one device ($1) computed afresh from its good raw rows (flagged readings count
    nowhere), in ROLLUP_COLS order; ``flagged`` False for a schema from before flags (migration 0005)."""
    return f"""
    SELECT {bucket} AS bucket, epoch, count(*)::int AS n,
           sum(power_w) AS power_sum, min(power_w) AS power_min, max(power_w) AS power_max,
           sum(greatest(power_w, 0)) AS power_import_sum, min(ts) AS first_ts, max(ts) AS last_ts,
           min(import_kwh) AS import_kwh_min, max(import_kwh) AS import_kwh_max,
           min(export_kwh) AS export_kwh_min, max(export_kwh) AS export_kwh_max,
           min(gas_m3) AS gas_m3_min, max(gas_m3) AS gas_m3_max,
           min(water_m3) AS water_m3_min, max(water_m3) AS water_m3_max,
           (array_agg(avg_power_15m_w ORDER BY ts DESC))[1] AS avg_power_15m_w,
           (array_agg(month_peak_w ORDER BY ts DESC))[1] AS month_peak_w
    FROM samples WHERE device_id = $1{" AND flag IS NULL" if flagged else ""} GROUP BY 1, 2 ORDER BY 1, 2"""


async def assert_rollups_exact(conn: Any, dev: str) -> None:
    """Each rollup equals a fresh aggregation of the good raw rows stored for the device."""
    for table, bucket in BUCKETS:
        stored = [
            dict(r)
            for r in await conn.fetch(
                f"SELECT {ROLLUP_COLS} FROM {table} WHERE device_id = $1 ORDER BY bucket, epoch", dev
            )
        ]
        expected = [dict(r) for r in await conn.fetch(rollup_from_raw_sql(bucket), dev)]
        assert stored == expected, table


async def until_a_request_waits_on_a_lock(conn: Any, what: str) -> None:
    """Waits until a session of this database waits on a lock (a request blocked by a test's row lock)."""
    query = """SELECT count(*) > 0 FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock'"""
    await eventually(lambda: conn.fetchval(query), 10, what, step_s=0.02)


def run_maintain(url: str, days: int | None = None) -> "subprocess.CompletedProcess[str]":
    """``p1-ingest maintain`` as cron runs it; it must succeed."""
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url}
    if days is not None:
        env["RAW_RETENTION_DAYS"] = str(days)
    done = subprocess.run(
        [console_script("p1-ingest"), "maintain"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done


# --- TimescaleDB ---------------------------------------------------------------------------------


async def run_compression_policy(conn: Any) -> timedelta:
    """Runs migration 0001's compression policy now, as its background job would (and as
    ``p1-ingest maintain`` does); returns its compress_after."""
    job = await policy_job(conn, COMPRESSION)
    await run_job(conn, job)
    return job["after"]  # type: ignore[no-any-return]


async def chunks(conn: Any) -> list[dict[str, Any]]:
    """The samples hypertable's chunks, oldest first: range_start, range_end, is_compressed."""
    rows = await conn.fetch(
        """SELECT range_start, range_end, is_compressed FROM timescaledb_information.chunks
           WHERE hypertable_name = 'samples' ORDER BY range_start"""
    )
    return [dict(r) for r in rows]
