"""The settler: keeps ``price_sums`` (migration 0012) filled for every device a dynamic plan prices.

Each pass finds, per such device, the UTC days of its history that have ended at or before its newest
reading and lack a valid row (never settled, or made invalid since by late readings or a price load),
newest first, and computes them from their quarters (``costs_sql.quarter_prefix``: the very code that
answers an unsettled hour) in one REPEATABLE READ transaction, so the readings, ``late_writes`` and the
price revision stored with the sums are one snapshot's. Replicas share the work through a per-device
advisory lock. A pass that fails is logged and retried on the next; answers never wait for it.
"""

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
from prometheus_client import CollectorRegistry, Counter

from p1_config.redact import describe_error
from p1_query.costs_sql import QUARTER_S, quarter_prefix
from p1_query.db import Conn
from p1_query.price_sums import DAY_S, HOUR_S, HOURS, SUMS, VALID_SQL

log = logging.getLogger(__name__)

BOTH: Final = ("import", "export")
# Days computed in one transaction: short transactions, and a year's backfill in a dozen of them.
DAYS_PER_TRANSACTION: Final = 31

DEVICES_SQL: Final = """
SELECT d.device_id FROM devices d
 WHERE d.last_ts IS NOT NULL
   AND EXISTS (SELECT 1 FROM tariff_plans p
                WHERE p.device_id IN (d.device_id, '*') AND (p.import_dynamic OR p.export_dynamic))
 ORDER BY d.device_id"""
STATE_SQL: Final = """
SELECT pg_try_advisory_xact_lock(hashtextextended('p1.price_sums.' || d.device_id, 0)) AS mine,
       d.late_writes, date_part('epoch', d.first_seen) AS first, date_part('epoch', d.last_ts) AS last,
       (SELECT coalesce(max(revision), 0) FROM price_changes) AS revision
  FROM devices d WHERE d.device_id = $1"""
# Days [lo, hi) without a valid row, newest first ($4: the late_writes of this snapshot).
UNSETTLED_SQL: Final = f"""
SELECT date_part('epoch', g.day) AS day
  FROM generate_series($2::timestamptz, $3::timestamptz - interval '24 hours', interval '24 hours') g (day)
 WHERE NOT EXISTS (SELECT 1 FROM price_sums s
                    WHERE s.device_id = $1 AND s.day = g.day AND s.late_writes = $4 AND {VALID_SQL})
 ORDER BY g.day DESC LIMIT $5"""
_COLUMNS: Final = tuple(f"{d}_{name}" for d in BOTH for name in SUMS)
UPSERT_SQL: Final = f"""
INSERT INTO price_sums (device_id, day, late_writes, prices_revision, {", ".join(_COLUMNS)})
VALUES ($1, $2, $3, $4, {", ".join(f"${k}" for k in range(5, 5 + len(_COLUMNS)))})
ON CONFLICT (device_id, day) DO UPDATE SET late_writes = EXCLUDED.late_writes,
    prices_revision = EXCLUDED.prices_revision, settled_at = now(),
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS)}"""


def _runs(days: list[float]) -> list[tuple[float, float]]:
    """Consecutive days as [start, end) stretches of UTC seconds."""
    out: list[tuple[float, float]] = []
    for day in sorted(days):
        if out and out[-1][1] == day:
            out[-1] = (out[-1][0], day + DAY_S)
        else:
            out.append((day, day + DAY_S))
    return out


async def settle_device(conn: Conn, device_id: str, max_days: int = DAYS_PER_TRANSACTION) -> int:
    """Settles up to ``max_days`` of the device's unsettled days; returns how many (0: none left, or
    another settler holds the device)."""
    async with conn.transaction(isolation="repeatable_read"):
        state = await conn.fetchrow(STATE_SQL, device_id)
        if state is None or not state["mine"] or state["last"] is None:
            return 0
        lo = state["first"] - state["first"] % DAY_S
        hi = state["last"] - state["last"] % DAY_S  # days ending at or before the newest reading
        if hi <= lo:
            return 0
        days = [
            r["day"]
            for r in await conn.fetch(
                UNSETTLED_SQL, device_id, _at(lo), _at(hi), state["late_writes"], max_days
            )
        ]
        rows: list[tuple[Any, ...]] = []
        for a, b in _runs(days):
            live = await quarter_prefix(conn, device_id, _at(a), _at(b), BOTH)
            hourly = [column for d in BOTH for column in live[d].per(HOUR_S // QUARTER_S)]
            for k in range(int(b - a) // DAY_S):
                day = slice(k * HOURS, (k + 1) * HOURS)
                rows.append(
                    (
                        device_id,
                        _at(a + k * DAY_S),
                        state["late_writes"],
                        state["revision"],
                        *(c[day] for c in hourly),
                    )
                )
        await conn.executemany(UPSERT_SQL, rows)
        return len(rows)


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


async def settle_all(conn: Conn) -> int:
    """Settles every device a dynamic plan prices until none has an unsettled day; returns the days."""
    done = 0
    for row in await conn.fetch(DEVICES_SQL):
        while settled := await settle_device(conn, row["device_id"]):
            done += settled
            if settled < DAYS_PER_TRANSACTION:
                break
    return done


class PriceSettler:
    """The background task of each query process: a pass every ``interval_s`` (0: never), each
    transaction on a connection of its own from the pool, so no request waits behind a whole pass."""

    # Days one pass settles at most: a year (~0.3 s of work, in transactions of a month), so a year's
    # backfill, or its re-settling after late data, takes one pass, and a pass a bounded time.
    PASS_DAYS: Final = 12 * DAYS_PER_TRANSACTION

    def __init__(self, interval_s: float, registry: CollectorRegistry) -> None:
        self._interval_s = interval_s
        self._acquire: Callable[[], AbstractAsyncContextManager[Conn]] | None = None
        self._days = Counter(
            "p1_query_price_sums_settled_days", "Days of dynamic price sums settled.", registry=registry
        )
        self._failures = Counter(
            "p1_query_price_sums_failures",
            "Settling passes that failed (retried next pass).",
            registry=registry,
        )

    def attach(self, acquire: Callable[[], AbstractAsyncContextManager[Conn]]) -> None:
        self._acquire = acquire

    async def run(self) -> None:
        if self._interval_s <= 0:
            return
        while True:  # the process's lifetime; the lifespan cancels it at shutdown
            await self.settle_once()
            await asyncio.sleep(self._interval_s)

    async def settle_once(self) -> int:
        """One pass; returns the days settled."""
        if self._acquire is None:
            return 0
        try:
            async with self._acquire() as conn:
                devices = [r["device_id"] for r in await conn.fetch(DEVICES_SQL)]
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            self._failed("the devices", exc)
            return 0
        done = 0
        for device_id in devices:
            if done >= self.PASS_DAYS:
                break
            done += await self._settle(device_id, self.PASS_DAYS - done)
        self._days.inc(done)
        return done

    async def _settle(self, device_id: str, budget: int) -> int:
        assert self._acquire is not None
        done = 0
        try:
            while done < budget:
                async with self._acquire() as conn:
                    settled = await settle_device(conn, device_id, min(DAYS_PER_TRANSACTION, budget - done))
                done += settled
                if settled < DAYS_PER_TRANSACTION:
                    break
        except Exception as exc:  # one device's failure must not end settling for the others
            self._failed(device_id, exc)
        return done

    def _failed(self, what: str, exc: BaseException) -> None:
        # Answers stay right meanwhile (from the quarters); the next pass tries again.
        self._failures.inc()
        log.warning(
            "settling dynamic price sums failed; retried next pass",
            extra={"settling": what, "error": describe_error(exc)},
        )
