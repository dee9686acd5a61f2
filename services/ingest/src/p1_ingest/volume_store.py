"""Gas and water readings of a batch into ``meter_volumes`` and the volume rollups, in the batch's
transaction, under its device row lock (``store.write_columns`` calls ``store_volumes`` after the main
statement). The rules are ``volumes.py``'s; the fold is the schema's (``p1_schema.rollups``).

Exactly once as for electricity: a reading is identified by the meter's own time, inserted with
``ON CONFLICT DO NOTHING``, and only the rows inserted (or suspects decided) are folded.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from p1_ingest.batch import ColumnBatch
from p1_ingest.integrity import Anchor
from p1_ingest.volumes import METERS, Around, MeterSpec, Stored, VolumePlan, VolumeState, plan, readings_of
from p1_schema.rollups import VOLUME_FOLD_COUNTS, VOLUME_ROLLED, volume_fold_sql

_STATE_SQL: Final = """
SELECT meter, epoch, good_ts, good_value, good_m, run_start FROM meter_volume_state WHERE device_id = $1"""
# Without a state row (a rebuild dropped it): start again from the newest good reading.
_NEWEST_GOOD_SQL: Final = """
SELECT ts, value, epoch FROM meter_volumes WHERE device_id = $1 AND meter = $2 AND flag IS NULL
 ORDER BY ts DESC LIMIT 1"""
_SUSPECTS_SQL: Final = """
SELECT ts, value, epoch FROM meter_volumes WHERE device_id = $1 AND meter = $2 AND ts >= $3
   AND flag = 'suspect' ORDER BY ts"""
# Per late reading: stored already?, its nearest good readings before and after.
_LATE_SQL: Final = """
SELECT x.ts, s.ts IS NOT NULL AS stored, b.ts AS b_ts, b.value AS b_value, b.epoch AS b_epoch,
       a.ts AS a_ts, a.value AS a_value, a.epoch AS a_epoch
  FROM unnest($3::timestamptz[]) AS x(ts)
  LEFT JOIN meter_volumes s ON s.device_id = $1 AND s.meter = $2 AND s.ts = x.ts
  LEFT JOIN LATERAL (
      SELECT ts, value, epoch FROM meter_volumes
       WHERE device_id = $1 AND meter = $2 AND ts < x.ts AND flag IS NULL ORDER BY ts DESC LIMIT 1) b ON true
  LEFT JOIN LATERAL (
      SELECT ts, value, epoch FROM meter_volumes
       WHERE device_id = $1 AND meter = $2 AND ts > x.ts AND flag IS NULL ORDER BY ts LIMIT 1) a ON true"""
WRITE_SQL: Final = f"""
WITH ins AS (
    INSERT INTO meter_volumes (device_id, meter, ts, value, epoch, flag)
    SELECT $1, $2, * FROM unnest($3::timestamptz[], $4::float8[], $5::int[], $6::text[])
    ON CONFLICT DO NOTHING
    RETURNING {", ".join(VOLUME_ROLLED)}
), upd AS (
    UPDATE meter_volumes v SET flag = u.flag, epoch = u.epoch
      FROM unnest($7::timestamptz[], $8::text[], $9::int[]) AS u(ts, flag, epoch)
     WHERE v.device_id = $1 AND v.meter = $2 AND v.ts = u.ts AND v.flag = 'suspect'
    RETURNING {", ".join("v." + c for c in VOLUME_ROLLED)}
), vrows AS (
    SELECT * FROM ins UNION ALL SELECT * FROM upd
), {volume_fold_sql("vrows")}, st AS (
    INSERT INTO meter_volume_state AS s (device_id, meter, epoch, good_ts, good_value, good_m, run_start)
    VALUES ($1, $2, $10, $11, $12, $13, $14)
    ON CONFLICT (device_id, meter) DO UPDATE SET epoch = EXCLUDED.epoch, good_ts = EXCLUDED.good_ts,
        good_value = EXCLUDED.good_value, good_m = EXCLUDED.good_m, run_start = EXCLUDED.run_start
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins)::int AS inserted, {VOLUME_FOLD_COUNTS},
       (SELECT count(*) FROM st)::int AS st"""


async def store_volumes(conn: Any, batch: ColumnBatch) -> bool:
    """Stores the batch's gas and water readings. True when a good one was placed before its meter's
    newest good reading: answers the query cache holds as final (those ending before the newest reading
    of every meter, docs/design.md §9) may change, so the caller bumps ``devices.late_writes``."""
    wanted = [(spec, found) for spec in METERS if (found := readings_of(batch, spec))]
    if not wanted:
        return False
    states = {r["meter"]: r for r in await conn.fetch(_STATE_SQL, batch.device_id)}
    placed_late = False
    for spec, readings in wanted:
        row = states.get(spec.meter)
        state = VolumeState(*list(row.values())[1:]) if row is not None else await _restart(conn, batch, spec)
        if _nothing_new(readings, state):
            continue
        around = await _around(conn, batch.device_id, spec, readings, state)
        decided = plan(readings, state, spec, around)
        await _write(conn, batch.device_id, spec, decided)
        placed_late = placed_late or decided.placed_late
    return placed_late


def _nothing_new(readings: Sequence[tuple[datetime, float]], state: VolumeState) -> bool:
    """The usual batch: its only reading is the newest good one, stored already."""
    return state.run_start is None and all(t == state.good_ts for t, _ in readings)


async def _restart(conn: Any, batch: ColumnBatch, spec: MeterSpec) -> VolumeState:
    row = await conn.fetchrow(_NEWEST_GOOD_SQL, batch.device_id, spec.meter)
    return VolumeState() if row is None else VolumeState(row["epoch"], row["ts"], row["value"])


async def _around(
    conn: Any, device_id: str, spec: MeterSpec, readings: Sequence[tuple[datetime, float]], state: VolumeState
) -> Around:
    around = Around()
    if state.run_start is not None:
        rows = await conn.fetch(_SUSPECTS_SQL, device_id, spec.meter, state.run_start)
        around.suspects = [Stored(r["ts"], r["value"], r["epoch"]) for r in rows]
    newest = state.good_ts
    late = [t for t, _ in readings if newest is not None and t < newest]
    if late:
        for r in await conn.fetch(_LATE_SQL, device_id, spec.meter, late):
            if r["stored"]:
                around.stored.add(r["ts"])
                continue
            epoch = r["b_epoch"] if r["b_ts"] is not None else r["a_epoch"]
            before = None if r["b_ts"] is None else Anchor(r["b_ts"].timestamp(), r["b_value"], 0.0)
            after = (
                Anchor(r["a_ts"].timestamp(), r["a_value"], 0.0)
                if r["a_ts"] is not None and r["a_epoch"] == epoch
                else None
            )
            around.late[r["ts"]] = (epoch, before, after)
    return around


async def _write(conn: Any, device_id: str, spec: MeterSpec, decided: VolumePlan) -> None:
    rows, changed, st = decided.rows, decided.changed, decided.state
    await conn.fetchrow(
        WRITE_SQL,
        device_id,
        spec.meter,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [c[0] for c in changed],
        [c[1] for c in changed],
        [c[2] for c in changed],
        st.epoch,
        st.good_ts,
        st.good_value,
        st.good_m,
        st.run_start,
    )
