"""Gas and water: which meter readings a batch carries, and their epochs and integrity flags. Pure rules;
``volume_store.py`` fetches what they need and writes what they decide (docs/design.md §6).

A gas or water reading is the meter's (``gas_ts``, ``gas_m3``): a DSMR 4 meter's hourly value repeated in
every telegram of its hour is one reading, placed at the time the gas meter measured it, not at the poll
time. The readings of a meter are judged by the electricity rules of ``integrity`` — the same ``Replay``
(good, suspect, glitch, a new epoch when a new level persists) and ``late_fits`` — on the meter's own time
axis, with the meter's own epochs (a gas meter replacement is no electricity one) and a largest flow in
place of the largest power. ``Replay`` checks two counters; a meter has one, so the second is a constant 0.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from p1_ingest.batch import ColumnBatch
from p1_ingest.integrity import GLITCH, GOOD, SUSPECT, Anchor, Flag, Level, Limits, Replay, late_fits


@dataclass(frozen=True)
class MeterSpec:
    meter: str  # the name in meter_volumes
    value: str  # the Sample fields
    time: str
    max_per_hour: float  # the largest flow (m³/h) a residential meter of this kind measures

    @property
    def limits(self) -> Limits:
        # Limits counts kWh at a power in W: the same arithmetic in m³ at a flow of 1000 × m³/h.
        return Limits(max_power_w=self.max_per_hour * 1000.0)


# Gas: G25, the largest residential gas meter, measures up to 40 m³/h. Water: Q4 (overload) of a DN32
# meter, 16 m³/h, above any household's. A rise faster than that is a glitch, as a fall always is.
METERS: Final = (
    MeterSpec("gas", "gas_m3", "gas_ts", 40.0),
    MeterSpec("water", "water_m3", "water_ts", 16.0),
)
# A meter time later than the poll time by more than this (the skew ingest allows for ``ts``) cannot be a
# reading's: the value is not used.
MAX_AHEAD: Final = timedelta(minutes=5)


def readings_of(batch: ColumnBatch, spec: MeterSpec) -> list[tuple[datetime, float]]:
    """The batch's readings of one meter, each meter time once (its first value in poll order), in time
    order. Without a meter time, the poll time is the reading's."""
    values, times, polls = batch.columns[spec.value], batch.columns[spec.time], batch.ts
    if values.count(None) == len(values):
        return []
    found: dict[datetime, float] = {}
    for i in sorted(range(len(polls)), key=polls.__getitem__):
        v, t = values[i], times[i]
        if v is None:
            continue
        at = polls[i] if t is None else t
        assert isinstance(at, datetime)
        assert isinstance(v, float | int)
        if at <= polls[i] + MAX_AHEAD and at not in found:
            found[at] = float(v)
    return sorted(found.items())


@dataclass
class VolumeState:
    """The ``meter_volume_state`` row: the current epoch's good level and the pending run."""

    epoch: int = 0
    good_ts: datetime | None = None
    good_value: float | None = None
    good_m: float | None = None
    run_start: datetime | None = None


@dataclass(frozen=True)
class Stored:
    ts: datetime
    value: float
    epoch: int


@dataclass
class Around:
    """What the database holds about the batch's readings."""

    suspects: list[Stored] = field(default_factory=list)  # the pending run, in time order
    stored: set[datetime] = field(default_factory=set)  # late readings stored already
    # late ts → (epoch in force, good neighbour before, good neighbour after of that epoch)
    late: dict[datetime, tuple[int, Anchor | None, Anchor | None]] = field(default_factory=dict)


@dataclass
class VolumePlan:
    rows: list[tuple[datetime, float, int, Flag]]  # new readings: ts, value, epoch, flag
    changed: list[tuple[datetime, Flag, int]]  # pending suspects decided: ts, flag, epoch
    state: VolumeState
    # A good reading before the meter's newest good one: answers the query cache holds as final (those
    # ending before the newest reading of every meter, docs/design.md §9) may change.
    placed_late: bool


def good_level(state: VolumeState, lim: Limits) -> Level | None:
    if state.good_ts is None or state.good_value is None:
        return None
    level = Level(state.good_ts, state.good_ts.timestamp(), state.good_value, 0.0, lim.rate)
    if state.good_m is not None:
        level.m_imp = state.good_m
    return level


def split(
    readings: Sequence[tuple[datetime, float]], state: VolumeState, suspects: Sequence[Stored]
) -> tuple[list[int], list[int]]:
    """(forward, late) indexes: after the newest good reading, and before it. The newest good reading
    itself and the pending suspects are stored already."""
    newest = state.good_ts
    pending = {s.ts for s in suspects}
    forward = [i for i, (t, _) in enumerate(readings) if (newest is None or t > newest) and t not in pending]
    late = [i for i, (t, _) in enumerate(readings) if newest is not None and t < newest]
    return forward, late


def plan(
    readings: Sequence[tuple[datetime, float]], state: VolumeState, spec: MeterSpec, around: Around
) -> VolumePlan:
    lim = spec.limits
    forward, late = split(readings, state, around.suspects)
    replay = Replay(lim, good_level(state, lim), state.epoch)
    mine = ((readings[i][0], readings[i][1], i) for i in forward)
    theirs = ((s.ts, s.value, -1 - j) for j, s in enumerate(around.suspects))
    for at, value, key in sorted([*mine, *theirs], key=lambda item: item[0]):
        replay.feed(at, at.timestamp(), value, 0.0, key)
    replay.finish()
    outcome = replay.outcome
    rows = [(readings[i][0], readings[i][1], outcome[i][1], outcome[i][0]) for i in forward]
    rows += _judge_late(readings, [i for i in late if readings[i][0] not in around.stored], around.late, lim)
    changed = [
        (s.ts, *outcome[-1 - j])
        for j, s in enumerate(around.suspects)
        if outcome[-1 - j] != (SUSPECT, s.epoch)
    ]
    good, run = replay.good, replay.run
    after = VolumeState(
        replay.epoch,
        good.last_at if good else None,
        good.imp if good else None,
        good.m_imp if good else None,
        run.start_at if run else None,
    )
    newest = state.good_ts
    placed_late = newest is not None and any(r[3] is GOOD and r[0] < newest for r in rows)
    return VolumePlan(rows, changed, after, placed_late)


def _judge_late(
    readings: Sequence[tuple[datetime, float]],
    late: Sequence[int],
    neighbours: Mapping[datetime, tuple[int, Anchor | None, Anchor | None]],
    lim: Limits,
) -> list[tuple[datetime, float, int, Flag]]:
    """As ``plan._judge_late`` for electricity: in time order, an accepted reading becomes the nearer
    'before' neighbour of the next one of its epoch."""
    out: list[tuple[datetime, float, int, Flag]] = []
    accepted: dict[int, Anchor] = {}
    for i in late:
        at, value = readings[i]
        epoch, before, after = neighbours[at]
        mine = accepted.get(epoch)
        if mine is not None and (before is None or mine.t > before.t):
            before = mine
        if late_fits(at.timestamp(), value, 0.0, before, after, lim.rate):
            accepted[epoch] = Anchor(at.timestamp(), value, 0.0)
            out.append((at, value, epoch, GOOD))
        else:
            out.append((at, value, epoch, GLITCH))
    return out
