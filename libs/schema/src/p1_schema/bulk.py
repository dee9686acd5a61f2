"""A device's history loaded in bulk, for tests and benchmarks that need volume rather than ingest's rules.

The raw readings go in by COPY; the rollups are then folded from the stored rows by the schema's own
SQL (``rollups.RECOMPUTE_SQL``: the fold ingest runs on every insert), a day at a time; the device row
and its first counter epoch are written as ingest would write them. Every reading counts as good and of
counter epoch 0: a history of one meter whose counters never go back. Anything that depends on ingest's
rules (integrity flags, new epochs, late readings, meter replacements) is seeded through a real ingest.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from itertools import repeat
from typing import Final

import asyncpg

from p1_schema.capacity import refresh
from p1_schema.rollups import RECOMPUTE_SQL

# Rollups are folded a day of readings at a time: bounded memory whatever the history's length.
FOLD_SPAN: Final = timedelta(days=1)
_ONE_US: Final = timedelta(microseconds=1)
_DEVICE_SQL: Final = """
INSERT INTO devices (device_id, first_seen, last_seen, meter_serial, current_epoch, last_ts, last_import_kwh,
                     last_export_kwh, good_ts, good_import_kwh, good_export_kwh)
VALUES ($1, $2, $3, $4, 0, $3, $5, $6, $3, $5, $6)"""
_EPOCH_SQL: Final = """
INSERT INTO counter_epochs (device_id, epoch, started_at, reason, meter_serial)
VALUES ($1, 0, $2, 'first', $3)"""


async def load_device(
    conn: "asyncpg.Connection[asyncpg.Record]",
    device_id: str,
    readings: Mapping[str, Sequence[object]],
    meter_serial: str | None = None,
) -> int:
    """Stores a new device's readings, given column-wise by Sample field name (``ts``, ``power_w``,
    ``import_kwh`` and ``export_kwh`` at least; any order), with their rollups, in one transaction.
    A device that exists already is refused (its rows would be folded twice). Returns the readings."""
    ts: Sequence[datetime] = readings["ts"]  # type: ignore[assignment]
    if not ts:
        return 0
    newest = max(range(len(ts)), key=ts.__getitem__)
    first, last = min(ts), ts[newest]
    names = tuple(readings)
    async with conn.transaction():
        imp, exp = readings["import_kwh"][newest], readings["export_kwh"][newest]
        await conn.execute(_DEVICE_SQL, device_id, first, last, meter_serial, imp, exp)
        await conn.execute(_EPOCH_SQL, device_id, first, meter_serial)
        records = zip(repeat(device_id, len(ts)), *(readings[name] for name in names), strict=True)
        await conn.copy_records_to_table("samples", records=records, columns=("device_id", *names))
        await fold_stored(conn, device_id, first, last + _ONE_US)
    return len(ts)


async def fold_stored(
    conn: "asyncpg.Connection[asyncpg.Record]", device_id: str, start: datetime, end: datetime
) -> None:
    """Folds the device's stored readings of [start, end) into the rollups, each exactly once: only for
    readings that reached ``samples`` some other way than ingest's insert, which folds its own."""
    lo = start
    for _ in range(int((end - start) / FOLD_SPAN) + 1):  # each pass a day, the last one reaching end
        if lo >= end:
            break
        hi = min(lo + FOLD_SPAN, end)
        await conn.fetchrow(RECOMPUTE_SQL, device_id, lo, hi)
        lo = hi
    await refresh(conn, device_id, start, end)  # the quarter demands, as ingest keeps them
