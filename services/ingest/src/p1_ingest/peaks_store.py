"""The statement of ``PUT …/meter-peaks`` (table ``meter_peaks``, migration 0008)."""

from typing import Final

from p1_ingest.peaks import Peaks
from p1_ingest.sql import INGEST_WRITER
from p1_ingest.store import Conn

# $1 device, $2/$3/$4 months, peak_w, peak_ts. A report replaces the stored one when it is newer: the
# later peak_ts, of equal times the higher peak_w, so replays in any order end in the same row.
# ``stored`` counts the sent months whose row is now the one sent (the CTEs see the table as it was
# before the statement: the new row, or one not newer than it). A change is counted in
# devices.meter_peak_writes, part of the query cache's device version (docs/design.md §9): final
# capacity answers read these rows.
STORE_PEAKS_SQL: Final = """
WITH given AS (
    SELECT * FROM unnest($2::text[], $3::float8[], $4::timestamptz[]) AS g(month, peak_w, peak_ts)
), up AS (
    INSERT INTO meter_peaks AS m (device_id, month, peak_w, peak_ts)
    SELECT $1, month, peak_w, peak_ts FROM given
    ON CONFLICT (device_id, month) DO UPDATE
       SET peak_w = EXCLUDED.peak_w, peak_ts = EXCLUDED.peak_ts, received_at = now()
     WHERE (EXCLUDED.peak_ts, EXCLUDED.peak_w) > (m.peak_ts, m.peak_w)
    RETURNING 1
), dev AS (
    UPDATE devices SET meter_peak_writes = meter_peak_writes + 1
     WHERE device_id = $1 AND EXISTS (SELECT 1 FROM up)
    RETURNING 1
)
SELECT count(*) FILTER (WHERE m.month IS NULL OR (g.peak_ts, g.peak_w) >= (m.peak_ts, m.peak_w))::int
       AS stored, (SELECT count(*) FROM dev)::int AS dev
  FROM given g LEFT JOIN meter_peaks m ON m.device_id = $1 AND m.month = g.month"""


async def store_peaks(conn: Conn, device_id: str, peaks: Peaks) -> int:
    """Stores the peaks in one transaction; the count of months now holding the value sent."""
    async with conn.transaction():
        # The writer's version first: the statement may update devices (p1_require_current_ingest).
        await conn.execute("SELECT set_config('p1.ingest_writer', $1, true)", INGEST_WRITER)
        row = await conn.fetchrow(STORE_PEAKS_SQL, device_id, peaks.months, peaks.peak_w, peaks.peak_ts)
    assert row is not None  # an aggregate always answers one row
    return int(row["stored"])
