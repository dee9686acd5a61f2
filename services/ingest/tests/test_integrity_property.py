"""No sequence of readings, in any arrival order, books more energy than the largest power allows, and
counter epochs stay bounded (issue 11 point 2). Two properties over the same arbitrary cases
(``integrity_cases``):

- through PostgreSQL: every batch by the real write path, the energy read back from rollup_15m by the
  query service's own energy code (bounded number of examples: each is a few database round trips);
- the planner alone (``plan.plan_batch``) on an in-memory table, with many more examples: what the
  write path asks the database is answered from a dict, what it writes is applied to it.
"""

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings, target
from integrity_cases import LIM, T0, TOLERANCE, Case, R, S, cases, check_epoch_starts, check_pairwise
from store_kit import columns_of

from p1_ingest.batch import ColumnBatch
from p1_ingest.integrity import Anchor, Flag
from p1_ingest.plan import DeviceState, Surroundings, Suspect, late_cutoff, plan_batch
from p1_ingest.sql import DEVICE_COLUMNS
from p1_ingest.store import _device_args, _epoch_spans, prepare_connection, write_columns
from p1_query.energy import curves, energies
from p1_query.groups import fetch_groups

NOW = T0 + timedelta(days=30)
QUARTER = 900.0


def check_energy(
    groups: list[tuple[int, float, float, float, float]], counter: str, starts: list[float]
) -> None:
    """Energy booked per quarter and over the whole span, from (epoch, first_ts, first, last_ts, last)
    groups in time order (times in seconds after T0), against P·span + P·SLACK_S per epoch touching."""
    cs = curves(groups)
    if not cs:
        return
    lo = min(c.ts[0] for c in cs.values())
    hi = max(c.ts[-1] for c in cs.values())
    bounds = [QUARTER * k for k in range(math.floor(lo / QUARTER), math.floor(hi / QUARTER) + 2)]
    per_quarter = energies(cs, bounds)
    for q0, q1, e in zip(bounds, bounds[1:], per_quarter, strict=False):
        touching = sum(1 for c in cs.values() if c.ts[0] < q1 and c.ts[-1] > q0)
        assert e <= R * QUARTER + S * touching + TOLERANCE, (counter, q0, e, touching)
    assert sum(per_quarter) <= R * (hi - lo) + S * len(cs) + TOLERANCE, (counter, sum(per_quarter))
    check_epoch_starts(starts, hi - lo)


# --- through PostgreSQL ---------------------------------------------------------------------------


async def _read_back(
    conn: Any, dev: str
) -> tuple[dict[int, list[tuple[float, float, float]]], list[Any], list[float]]:
    rows = await conn.fetch(
        "SELECT ts, import_kwh, export_kwh, epoch FROM samples WHERE device_id = $1 AND flag IS NULL", dev
    )
    good: dict[int, list[tuple[float, float, float]]] = {}
    for r in rows:
        good.setdefault(r["epoch"], []).append(
            ((r["ts"] - T0).total_seconds(), r["import_kwh"], r["export_kwh"])
        )
    resets = await conn.fetch(
        "SELECT started_at FROM counter_epochs WHERE device_id = $1 AND reason = 'counter_reset'", dev
    )
    first = await conn.fetchval("SELECT min(ts) FROM samples WHERE device_id = $1", dev)
    last = await conn.fetchval("SELECT max(ts) FROM samples WHERE device_id = $1", dev)
    span_bounds = [first, last + timedelta(seconds=1)]
    quarters = [
        T0 + timedelta(seconds=QUARTER * k)
        for k in range(
            math.floor((span_bounds[0] - T0).total_seconds() / QUARTER),
            math.floor((span_bounds[1] - T0).total_seconds() / QUARTER) + 2,
        )
    ]
    groups = await fetch_groups(conn, dev, "15m", quarters)
    return good, groups, [(r["started_at"] - T0).total_seconds() for r in resets]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
async def test_no_arrival_order_books_more_than_the_largest_power(database_url: str, case: Case) -> None:
    dev = f"prop-{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(database_url)
    try:
        await prepare_connection(conn)
        for batch in case.batches:
            await write_columns(conn, columns_of(case.body(dev, batch)), NOW)
        good, groups, resets = await _read_back(conn, dev)
    finally:
        await conn.close()
    assert sum(len(v) for v in good.values()) >= 1  # the first reading of a device is always good
    check_pairwise(good)
    t0 = T0.timestamp()
    for counter in ("import", "export"):
        rows = [
            (
                g.epoch,
                g.first_ts - t0,
                getattr(g, f"{counter}_first"),
                g.last_ts - t0,
                getattr(g, f"{counter}_last"),
            )
            for g in groups
        ]
        check_energy(rows, counter, resets)


# --- the planner on an in-memory table ------------------------------------------------------------


@dataclass
class _Row:
    imp: float
    exp: float
    flag: Flag
    epoch: int


@dataclass
class Memory:
    """One device's rows, epochs and state as the write path keeps them in PostgreSQL."""

    rows: dict[datetime, _Row] = field(default_factory=dict)
    state: DeviceState = field(default_factory=lambda: DeviceState())
    epochs: list[dict[str, Any]] = field(default_factory=list)

    def write(self, batch: ColumnBatch) -> None:
        plan = plan_batch(batch, self.state, LIM, self._surroundings(batch))
        for ts, flag, epoch in plan.changed:
            assert self.rows[ts].flag == "suspect"
            self.rows[ts].flag, self.rows[ts].epoch = flag, epoch
        n = len(batch)
        flags = plan.flags or [None] * n
        epochs = plan.epochs or [plan.single] * n
        for j, ts in enumerate(batch.ts):
            if ts not in self.rows:  # the first of a repeated ts is inserted, stored ones conflict
                imp, exp = batch.columns["import_kwh"][j], batch.columns["export_kwh"][j]
                self.rows[ts] = _Row(imp, exp, flags[j], epochs[j])  # type: ignore[arg-type]
        known = {e["epoch"] for e in self.epochs}
        self.epochs += [
            {"epoch": e.epoch, "started_at": e.started_at, "reason": e.reason}
            for e in plan.new
            if e.epoch not in known
        ]
        self.epochs.sort(key=lambda e: e["started_at"])
        args = _device_args(batch, self.state, plan, LIM, NOW)
        row = dict(zip(DEVICE_COLUMNS, args[1 : 1 + len(DEVICE_COLUMNS)], strict=True))
        del row["updated_at"]
        self.state = DeviceState(**row)

    def _surroundings(self, batch: ColumnBatch) -> Surroundings:
        around = Surroundings()
        st = self.state
        if st.last_ts is None:
            return around
        ts: list[datetime] = batch.in_order("ts")  # type: ignore[assignment]
        around.stored = {t: self.rows[t].flag for t in ts if t in self.rows}
        if st.run_start is not None:
            around.suspects = [
                Suspect(t, r.imp, r.exp, r.epoch)
                for t, r in sorted(self.rows.items())
                if r.flag == "suspect" and t >= st.run_start
            ]
        cutoff = late_cutoff(st)
        late = [t for t in ts if cutoff is not None and t <= cutoff and t not in around.stored]
        starts, spans = _epoch_spans(self.epochs, st.current_epoch)
        for t in late:
            epoch, lo, hi = spans[max(sum(1 for s in starts if s <= t) - 1, 0)]
            same = sorted(
                (u, r) for u, r in self.rows.items() if r.epoch == epoch and r.flag is None and lo <= u < hi
            )
            before = [(u, r) for u, r in same if u < t]
            after = [(u, r) for u, r in same if u > t]
            around.late[t] = (
                epoch,
                _anchor(before[-1] if before else None),
                _anchor(after[0] if after else None),
            )
        return around


def _anchor(item: tuple[datetime, _Row] | None) -> Anchor | None:
    return None if item is None else Anchor(item[0].timestamp(), item[1].imp, item[1].exp)


@settings(max_examples=600, deadline=None)
@given(case=cases(max_readings=60))
def test_the_planner_alone_keeps_every_bound(case: Case) -> None:
    memory = Memory()
    for batch in case.batches:
        memory.write(columns_of(case.body("memory", batch)))
    assert len(memory.rows) == len(case.readings)
    good: dict[int, list[tuple[float, float, float]]] = {}
    for ts, r in memory.rows.items():
        if r.flag is None:
            good.setdefault(r.epoch, []).append(((ts - T0).total_seconds(), r.imp, r.exp))
    target(check_pairwise(good), label="use of the slack (towards a violation)")
    suspects = [ts for ts, r in memory.rows.items() if r.flag == "suspect"]
    assert len(suspects) == memory.state.run_n
    assert all(memory.state.good_ts is not None and ts > memory.state.good_ts for ts in suspects)
    resets = [(e["started_at"] - T0).total_seconds() for e in memory.epochs if e["reason"] == "counter_reset"]
    for c, counter in ((1, "import"), (2, "export")):
        rows = sorted(
            ((e, row[0], row[c], row[0], row[c]) for e, rs in good.items() for row in rs), key=lambda g: g[1]
        )
        check_energy(rows, counter, resets)
