"""The counter epoch and integrity flag of every reading of a batch, and the device's state after it.

Pure: ``store.py`` fetches what the rules need from the database (``Surroundings``), this decides. The
readings of a batch fall into three kinds, by time:

- *stored already* (same device and ts): not inserted; nothing is decided about them;
- *late*: at or before the device's newest good reading → judged against their good neighbours of the
  epoch in force at their time (``integrity.late_fits``): good or glitch, never a new epoch;
- *forward*: after the newest good reading → replayed in time order from the good state together with
  the pending suspects (``integrity.Replay``): good, suspect, glitch, or the start of a new epoch.
"""

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from p1_ingest.batch import ColumnBatch
from p1_ingest.integrity import GLITCH, GOOD, SUSPECT, Anchor, Flag, Level, Limits, Replay, late_fits, steady


@dataclass
class DeviceState:
    """The ``devices`` row as the batch finds it (locked)."""

    first_seen: datetime | None = None
    last_seen: datetime | None = None
    meter_serial: str | None = None
    meter_model: str | None = None
    meter_protocol_version: int | None = None
    current_epoch: int = 0
    last_ts: datetime | None = None  # the newest stored reading, whatever its flag
    last_import_kwh: float | None = None
    last_export_kwh: float | None = None
    # The good level of the current epoch (migration 0005); NULL on rows from before it.
    good_ts: datetime | None = None
    good_import_kwh: float | None = None
    good_export_kwh: float | None = None
    good_import_m: float | None = None
    good_export_m: float | None = None
    integrity_power_w: float | None = None  # the MAX_POWER_W the m values were computed with
    run_start: datetime | None = None  # first reading of the pending suspects, if any
    run_n: int = 0


def good_level(state: DeviceState, lim: Limits) -> Level | None:
    """The good level from the device row. Rows from before migration 0005, or computed with another
    MAX_POWER_W, start again from the newest good reading (its m is that reading's f): pairs across
    such a change are not checked against each other."""
    at, imp, exp = state.good_ts, state.good_import_kwh, state.good_export_kwh
    if at is None:
        at, imp, exp = state.last_ts, state.last_import_kwh, state.last_export_kwh
    if at is None or imp is None or exp is None:
        return None
    level = Level(at, at.timestamp(), imp, exp, lim.rate)
    if state.integrity_power_w == lim.max_power_w and state.good_import_m is not None:
        level.m_imp = state.good_import_m
        level.m_exp = state.good_export_m if state.good_export_m is not None else level.m_exp
    return level


@dataclass(frozen=True)
class Suspect:
    ts: datetime
    import_kwh: float
    export_kwh: float
    epoch: int


@dataclass
class Surroundings:
    """What the database holds around the batch, fetched only when the batch needs it."""

    stored: dict[datetime, Flag] = field(default_factory=dict)  # batch ts already stored → their flag
    suspects: list[Suspect] = field(default_factory=list)  # the pending run, in time order
    # late ts → (epoch in force, good neighbour before, good neighbour after)
    late: dict[datetime, tuple[int, Anchor | None, Anchor | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class NewEpoch:
    epoch: int
    started_at: datetime
    reason: str
    meter_serial: str | None


@dataclass
class Plan:
    epochs: list[int] | None  # per reading in body order; None when ``single`` is every reading's
    single: int
    flags: list[Flag] | None  # per reading in body order; None when every reading is good
    new: list[NewEpoch]
    current_epoch: int
    good: Level | None
    run: Level | None
    # stored suspects whose flag or epoch changes: (ts, flag, epoch)
    changed: list[tuple[datetime, Flag, int]] = field(default_factory=list)
    newest_good: int | None = None  # body index of the newest reading that is (or was stored) good
    forward: bool = True  # the batch has readings after the newest good one (its meter is current)


@dataclass
class _Ordered:
    """The batch's readings in time order, each ts once."""

    at: list[datetime]
    t: list[float]
    imp: list[float]
    exp: list[float]

    @classmethod
    def of(cls, batch: ColumnBatch) -> "_Ordered":
        at: list[datetime] = batch.in_order("ts")  # type: ignore[assignment]
        return cls(
            at,
            list(map(datetime.timestamp, at)),
            batch.in_order("import_kwh"),  # type: ignore[arg-type]
            batch.in_order("export_kwh"),  # type: ignore[arg-type]
        )


def late_cutoff(state: DeviceState) -> datetime | None:
    """Readings at or before this are late (judged against neighbours)."""
    return state.good_ts if state.good_ts is not None else state.last_ts


def plan_batch(batch: ColumnBatch, state: DeviceState, lim: Limits, around: Surroundings) -> Plan:
    rows = _Ordered.of(batch)
    good = good_level(state, lim)
    serial = batch.meter.serial if batch.meter is not None else None
    replaced = serial is not None and state.meter_serial is not None and serial != state.meter_serial
    if (
        good is not None
        and not replaced
        and not around.suspects
        and state.last_ts is not None
        and rows.at[0] > state.last_ts
        and steady(good, rows.at, rows.t, rows.imp, rows.exp, lim)
    ):
        return Plan(
            None, state.current_epoch, None, [], state.current_epoch, good, None, [], batch.newest_index
        )
    return _general(batch, rows, state, good, lim, around, serial if replaced else None)


def _general(
    batch: ColumnBatch,
    rows: _Ordered,
    state: DeviceState,
    good: Level | None,
    lim: Limits,
    around: Surroundings,
    new_serial: str | None,
) -> Plan:
    cutoff = late_cutoff(state) if good is not None else None
    fresh = [i for i, at in enumerate(rows.at) if at not in around.stored]
    late = [i for i in fresh if cutoff is not None and rows.at[i] <= cutoff]
    forward = [i for i in fresh if cutoff is None or rows.at[i] > cutoff]
    replay = Replay(lim, good, state.current_epoch)
    first = forward[0] if forward else None
    for at, t, imp, exp, key in _merged(rows, forward, around.suspects):
        replay.feed(at, t, imp, exp, key, replaced=new_serial is not None and key == first)
    replay.finish()
    outcome = replay.outcome
    outcome.update(_judge_late(rows, late, around, lim))
    serial = batch.meter.serial if batch.meter is not None else None
    new = [NewEpoch(e.epoch, _at(rows, around.suspects, e.key), e.reason, serial) for e in replay.new]
    changed = [
        (s.ts, *outcome[-1 - j])
        for j, s in enumerate(around.suspects)
        if outcome[-1 - j] != (SUSPECT, s.epoch)
    ]
    flags, epochs = _body_order(batch, rows, outcome, replay.epoch)
    plan = Plan(epochs, replay.epoch, flags, new, replay.epoch, replay.good, replay.run, changed)
    plan.newest_good = _newest_good(batch, rows, outcome, around)
    plan.forward = bool(forward)
    return plan


def _merged(
    rows: _Ordered, forward: Sequence[int], suspects: Sequence[Suspect]
) -> Iterator[tuple[datetime, float, float, float, int]]:
    """Forward readings (key = ordered index) and pending suspects (key = −1 − j) in time order."""
    mine = ((rows.at[i], rows.t[i], rows.imp[i], rows.exp[i], i) for i in forward)
    theirs = ((s.ts, s.ts.timestamp(), s.import_kwh, s.export_kwh, -1 - j) for j, s in enumerate(suspects))
    return heapq.merge(mine, theirs, key=lambda item: item[0])


def _judge_late(
    rows: _Ordered, late: Sequence[int], around: Surroundings, lim: Limits
) -> dict[int, tuple[Flag, int]]:
    """Late readings in time order; one accepted becomes the 'before' neighbour of the next one of its
    epoch when it is nearer than the stored one (a late batch is checked merged with what is stored)."""
    out: dict[int, tuple[Flag, int]] = {}
    accepted: dict[int, Anchor] = {}
    for i in late:
        epoch, before, after = around.late[rows.at[i]]
        mine = accepted.get(epoch)
        if mine is not None and (before is None or mine.t > before.t):
            before = mine
        if late_fits(rows.t[i], rows.imp[i], rows.exp[i], before, after, lim.rate):
            accepted[epoch] = Anchor(rows.t[i], rows.imp[i], rows.exp[i])
            out[i] = (GOOD, epoch)
        else:
            out[i] = (GLITCH, epoch)
    return out


def _at(rows: _Ordered, suspects: Sequence[Suspect], key: int) -> datetime:
    return rows.at[key] if key >= 0 else suspects[-1 - key].ts


def _body_order(
    batch: ColumnBatch, rows: _Ordered, outcome: dict[int, tuple[Flag, int]], epoch: int
) -> tuple[list[Flag] | None, list[int] | None]:
    """Flags and epochs per reading in body order (None when all alike). Readings stored already and
    repeats of a ts in the body are not inserted; they get (good, the current epoch)."""
    n = len(rows.at)
    got = [outcome.get(i, (GOOD, epoch)) for i in range(n)]
    order = batch.order
    if order is not None:
        by_ts = dict(zip(rows.at, got, strict=True))
        got = [by_ts[t] for t in batch.ts]
    flags = [f for f, _ in got]
    epochs = [e for _, e in got]
    return (
        None if all(f is GOOD for f in flags) else flags,
        None if len(set(epochs)) <= 1 and epochs[0] == epoch else epochs,
    )


def _newest_good(
    batch: ColumnBatch, rows: _Ordered, outcome: dict[int, tuple[Flag, int]], around: Surroundings
) -> int | None:
    for i in range(len(rows.at) - 1, -1, -1):
        at = rows.at[i]
        flag = around.stored[at] if at in around.stored else outcome.get(i, (GOOD, 0))[0]
        if flag is GOOD:
            order = batch.order
            return i if order is None else order[i]
    return None
