"""What the store tests share: readings that are physically possible, batches, and the write path on a
pool or a plain connection (the rollup checks are ``ingest_kit``'s)."""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from p1_contracts.models import SampleBatch
from p1_ingest.batch import ColumnBatch, model_columns
from p1_ingest.store import WriteResult, prepare_connection, write_columns

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


def columns_of(batch: SampleBatch) -> ColumnBatch:
    """A batch validated by the contract model, as the service's parser hands it to the store."""
    return ColumnBatch(batch.device_id, batch.meter, model_columns(batch))


async def write(conn: Any, batch: SampleBatch, now: datetime) -> WriteResult:
    """Ingest's write path on any connection (a plain one gets the session's staging table first)."""
    await prepare_connection(conn)
    return await write_columns(conn, columns_of(batch), now)


@dataclass
class Store:
    """A pool as the service has it: every connection with its staging table."""

    pool: "asyncpg.Pool[asyncpg.Record]"

    async def write(self, conn: Any, batch: SampleBatch, now: datetime) -> WriteResult:
        return await write_columns(conn, columns_of(batch), now)


async def count(conn: Any, dev: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM samples WHERE device_id = $1", dev))
