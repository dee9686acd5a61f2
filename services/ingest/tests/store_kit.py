"""What the store tests share: readings that are physically possible, batches, the two routes to the
database, and the check that every rollup equals a fresh aggregation of the good raw rows."""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from p1_contracts.models import SampleBatch
from p1_ingest.batch import from_model
from p1_ingest.store import WriteResult, write_batch, write_columns

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def readings(n: int, start: datetime = T0, step_s: int = 7, imp0: float = 100.0) -> list[dict[str, Any]]:
    """Integer-valued powers, so that sums are exact whatever the order of addition; the counters
    grow by what the power delivers (so every reading is good: physically possible)."""
    out = []
    imp, exp = imp0, 50.0
    for i in range(n):
        p = (i * 37) % 900 - 300
        imp += max(p, 0) * step_s / 3.6e6
        exp += max(-p, 0) * step_s / 3.6e6
        out.append(
            {
                "ts": (start + timedelta(seconds=i * step_s)).isoformat(),
                "power_w": p,
                "import_kwh": round(imp, 6),
                "export_kwh": round(exp, 6),
                "avg_power_15m_w": i % 500,
                "month_peak_w": 4000 + i,
                "gas_m3": 10 + i // 100 if i % 3 else None,
            }
        )
    return out


def make(device: str, samples: list[dict[str, Any]], serial: str | None = "S1") -> SampleBatch:
    body: dict[str, Any] = {"device_id": device, "samples": samples}
    if serial is not None:
        body["meter"] = {"serial": serial, "model": "ISKRA", "protocol_version": 50}
    return SampleBatch.model_validate_json(json.dumps(body))


def device() -> str:
    return f"dev-{uuid.uuid4().hex[:10]}"


@dataclass
class Store:
    """One of the two ways rows reach the database: JSON parameter (``write_batch``) or binary COPY
    into the session's staging table (what the service uses). Every test below runs with both."""

    pool: "asyncpg.Pool[asyncpg.Record]"
    staged: bool

    async def write(self, conn: Any, batch: SampleBatch, now: datetime) -> WriteResult:
        if self.staged:
            return await write_columns(conn, from_model(batch), now, staged=True)
        return await write_batch(conn, batch, now)


ROLLUP_COLS = (
    "bucket, epoch, n, power_sum, power_min, power_max, power_import_sum, first_ts, last_ts, "
    "import_kwh_min, import_kwh_max, export_kwh_min, export_kwh_max, gas_m3_min, gas_m3_max, "
    "water_m3_min, water_m3_max, avg_power_15m_w, month_peak_w"
)


# rollup_1d holds the local days of the zone migration 0002 put in rollup_1d_zone.
BUCKETS = (
    ("rollup_15m", "date_bin('15 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00')"),
    ("rollup_1h", "date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00')"),
    ("rollup_1d", "date_trunc('day', ts, 'Europe/Brussels')"),
)


def _expected_sql(bucket: str) -> str:
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
    FROM samples WHERE device_id = $1 AND flag IS NULL GROUP BY 1, 2 ORDER BY 1, 2"""


async def assert_rollups_exact(conn: Any, dev: str) -> None:
    """Each rollup equals a fresh aggregation of the good raw rows stored for the device (flagged
    readings count nowhere)."""
    for table, bucket in BUCKETS:
        stored = [
            dict(r)
            for r in await conn.fetch(
                f"SELECT {ROLLUP_COLS} FROM {table} WHERE device_id = $1 ORDER BY bucket, epoch", dev
            )
        ]
        expected = [dict(r) for r in await conn.fetch(_expected_sql(bucket), dev)]
        assert stored == expected, table


async def count(conn: Any, dev: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM samples WHERE device_id = $1", dev))
