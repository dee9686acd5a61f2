"""The ``notifications`` table (migration 0011): the claim that makes a notification at most once per
device, quarter and kind, across restarts and replicas, and the record of what each channel answered."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Final, Literal

import asyncpg

Kind = Literal["warning", "result"]
Pool = "asyncpg.Pool[asyncpg.Record]"

# The claim: only the notifier whose insert returned a row sends. Before sending, never after: a crash
# between the two loses the message (at most once), it never doubles it.
_CLAIM: Final = """
INSERT INTO notifications (device_id, quarter_start, kind, message) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING RETURNING true"""
_SENT: Final = """
UPDATE notifications SET sent_at = now(), channels = $4::jsonb
 WHERE device_id = $1 AND quarter_start = $2 AND kind = $3"""
_WARNED: Final = """
SELECT EXISTS (SELECT 1 FROM notifications
                WHERE device_id = $1 AND quarter_start = $2 AND kind = 'warning')"""
_QUARTER_KW: Final = "SELECT kw FROM capacity_quarters WHERE device_id = $1 AND bucket = $2"


class Store:
    def __init__(self, pool: "asyncpg.Pool[asyncpg.Record]", acquire_timeout_s: float) -> None:
        self._pool = pool
        self._timeout = acquire_timeout_s

    async def claim(self, device_id: str, quarter: datetime, kind: Kind, message: str) -> bool:
        """True when this notifier won the right to send (no notifier claimed it before)."""
        async with self._pool.acquire(timeout=self._timeout) as conn:
            return bool(await conn.fetchval(_CLAIM, device_id, quarter, kind, message))

    async def sent(
        self, device_id: str, quarter: datetime, kind: Kind, channels: Sequence[dict[str, object]]
    ) -> None:
        async with self._pool.acquire(timeout=self._timeout) as conn:
            await conn.execute(_SENT, device_id, quarter, kind, json.dumps(list(channels)))

    async def warned(self, device_id: str, quarter: datetime) -> bool:
        async with self._pool.acquire(timeout=self._timeout) as conn:
            return bool(await conn.fetchval(_WARNED, device_id, quarter))

    async def quarter_kw(self, device_id: str, quarter: datetime) -> float | None:
        """The completed quarter's demand as ingest keeps it (None until a later reading completed it)."""
        async with self._pool.acquire(timeout=self._timeout) as conn:
            value = await conn.fetchval(_QUARTER_KW, device_id, quarter)
        return None if value is None else float(value)
