"""What the store tests share: readings that are physically possible, batches, and the two routes to the
database (the rollup checks are ``ingest_kit``'s)."""

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


async def count(conn: Any, dev: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM samples WHERE device_id = $1", dev))
