"""Counter integrity: which readings of import/export are good, suspect or glitch, and when a new counter
epoch starts. Pure rules, no database (services/ingest/NOTES.md, "Counter integrity", has the reasoning).

Notation: ``C(a)`` a counter (kWh) at reading ``a``, ``t_a`` its time (s), ``r = MAX_POWER_W / 3.6e6`` the
largest possible energy per second (kWh/s), ``S = r · SLACK_S`` the slack of one telegram interval, and
``f(a) = C(a) − r · t_a``. Two readings a < b of one epoch are *consistent* when

    0 ≤ C(b) − C(a) ≤ r·(t_b − t_a) + S,   i.e.  C(a) ≤ C(b)  and  f(b) − f(a) ≤ S.

The good readings of an epoch are kept consistent pairwise (every pair, not just neighbours), for import
and export independently. ``Level`` holds what that needs in O(1): the last reading's counters and
``m = min f`` over the readings.

Claim: if the readings of a level are pairwise consistent, a new reading ``b`` later than all of them is
consistent with every one of them iff ``C(b) ≥ C(last)`` and ``f(b) ≤ m + S``.
Proof. (⇐) Counters of the level are non-decreasing in time (pairwise consistency), so C(a) ≤ C(last) ≤
C(b) for every a; and f(b) − f(a) ≤ f(b) − m ≤ S because m ≤ f(a). (⇒) ``last`` is one of the readings,
so C(last) ≤ C(b); and m = f(a*) for some reading a*, so f(b) − m = f(b) − f(a*) ≤ S. ∎

Bound. For pairwise consistent readings, the energy a linear interpolation books in any window
[w0, w1] is at most r·(w1 − w0) + S: the interpolated counter minus r·t is piecewise linear between
readings, so its value at w1 is at most the larger f of the readings around w1 and at w0 at least the
smaller f of those around w0; those are earlier/later pairs (or one reading), whose f differ by ≤ S.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate, islice, repeat
from operator import add, ge, le, mul, sub
from typing import Final

# One DSMR 4 telegram interval: API v1 readings carry the poll time, not the telegram's, so a counter
# may be up to this much older than its timestamp says.
SLACK_S: Final = 10.0
# A run of suspects becomes a new epoch (counter reset / replaced meter) once it has lasted this long
# and has this many readings, with no return to the old level in between.
REPLACE_CONFIRM_S: Final = 300.0
REPLACE_CONFIRM_N: Final = 3
# 3 × 63 A × 230 V: the largest residential connection of Belgium and the Netherlands.
DEFAULT_MAX_POWER_W: Final = 43_470.0

GOOD: Final = None
SUSPECT: Final = "suspect"
GLITCH: Final = "glitch"
Flag = str | None


@dataclass(frozen=True, slots=True)
class Limits:
    max_power_w: float = DEFAULT_MAX_POWER_W

    @property
    def rate(self) -> float:
        """kWh per second at the largest possible power."""
        return self.max_power_w / 3.6e6

    @property
    def slack(self) -> float:
        """kWh that one telegram interval at the largest power may add."""
        return self.rate * SLACK_S


class Level:
    """Pairwise consistent readings (an epoch's good readings, or a run of suspects) in O(1):
    the first and the last reading's time, the last reading's counters, ``m = min f`` per counter.
    Times are UTC seconds for the arithmetic; ``start_at``/``last_at`` are the exact timestamps."""

    __slots__ = ("exp", "imp", "last_at", "last_ts", "m_exp", "m_imp", "n", "start", "start_at")

    def __init__(self, at: datetime, t: float, imp: float, exp: float, rate: float) -> None:
        self.start = self.last_ts = t
        self.start_at = self.last_at = at
        self.imp, self.exp = imp, exp
        self.m_imp, self.m_exp = imp - rate * t, exp - rate * t
        self.n = 1

    def fits(self, t: float, imp: float, exp: float, lim: Limits) -> bool:
        """Whether a reading later than all of the level's is consistent with every one of them."""
        if imp < self.imp or exp < self.exp:
            return False
        rt, s = lim.rate * t, lim.slack
        return imp - rt <= self.m_imp + s and exp - rt <= self.m_exp + s

    def add(self, at: datetime, t: float, imp: float, exp: float, rate: float) -> None:
        self.last_at, self.last_ts, self.imp, self.exp = at, t, imp, exp
        self.m_imp = min(self.m_imp, imp - rate * t)
        self.m_exp = min(self.m_exp, exp - rate * t)
        self.n += 1


def _column_fits(
    values: Sequence[float], last: float, m: float, ts: Sequence[float], lim: Limits
) -> float | None:
    """The new ``m`` when every value fits (in order, each against all before it), else None.
    C-level iterators only: this runs on every reading of every batch."""
    if not values or values[0] < last or not all(map(le, values, islice(values, 1, None))):
        return None
    f: list[float] = list(map(sub, values, map(mul, ts, repeat(lim.rate))))
    # Below the largest power all along (every real batch), f never grows: then each f[i] is ≤ the f
    # before it and ≤ f[0] ≤ m + S, so it fits, and the new m is the last f. Else the general check.
    if f[0] <= m + lim.slack and all(map(ge, f, islice(f, 1, None))):
        return min(m, f[-1])
    prefix_min = list(accumulate(f, min, initial=m))  # prefix_min[i]: m over everything before f[i]
    if not all(map(le, f, map(add, prefix_min, repeat(lim.slack)))):
        return None
    return prefix_min[-1]


def steady(
    good: Level,
    at: Sequence[datetime],
    ts: Sequence[float],
    imp: Sequence[float],
    exp: Sequence[float],
    lim: Limits,
) -> bool:
    """The usual batch: every reading (in time order, all later than the level's) is good. When so,
    ``good`` is advanced to include them all; when not, it is left unchanged."""
    m_imp = _column_fits(imp, good.imp, good.m_imp, ts, lim)
    if m_imp is None:
        return False
    m_exp = _column_fits(exp, good.exp, good.m_exp, ts, lim)
    if m_exp is None:
        return False
    good.last_at, good.last_ts, good.imp, good.exp = at[-1], ts[-1], imp[-1], exp[-1]
    good.m_imp, good.m_exp = m_imp, m_exp
    good.n += len(ts)
    return True


@dataclass(frozen=True, slots=True)
class NewEpochAt:
    epoch: int
    key: int  # the reading that starts it
    reason: str


class Replay:
    """Readings later than the newest good one, judged in time order from the good state (the in-order
    rules). Each reading is fed with a ``key``; ``outcome[key]`` is its (flag, epoch) once decided.

    - fits the good level → good; every pending suspect becomes a glitch;
    - else fits the pending run → joins it; a run of ≥ REPLACE_CONFIRM_N readings lasting
      ≥ REPLACE_CONFIRM_S becomes a new epoch (``counter_reset``) from its first reading, all good;
    - else → the pending run's readings become glitches and this reading starts a new run.
    """

    def __init__(self, lim: Limits, good: Level | None, epoch: int) -> None:
        self.lim = lim
        self.good = good
        self.epoch = epoch
        self.run: Level | None = None
        self.run_keys: list[int] = []
        self.outcome: dict[int, tuple[Flag, int]] = {}
        self.new: list[NewEpochAt] = []

    def feed(self, at: datetime, t: float, imp: float, exp: float, key: int, replaced: bool = False) -> None:
        """``replaced``: the meter serial changed at this reading (a new epoch at once)."""
        good, lim = self.good, self.lim
        if good is None or replaced:
            self._drop_run()
            if good is not None:
                self.epoch += 1
            self.new.append(NewEpochAt(self.epoch, key, "first" if good is None else "meter_replaced"))
            self.good = Level(at, t, imp, exp, lim.rate)
            self.outcome[key] = (GOOD, self.epoch)
        elif good.fits(t, imp, exp, lim):
            self._drop_run()
            good.add(at, t, imp, exp, lim.rate)
            self.outcome[key] = (GOOD, self.epoch)
        elif self.run is not None and self.run.fits(t, imp, exp, lim):
            self.run.add(at, t, imp, exp, lim.rate)
            self.run_keys.append(key)
            self._confirm_if_due()
        else:
            self._drop_run()
            self.run = Level(at, t, imp, exp, lim.rate)
            self.run_keys = [key]

    def _confirm_if_due(self) -> None:
        run = self.run
        assert run is not None
        if run.n < REPLACE_CONFIRM_N or run.last_ts - run.start < REPLACE_CONFIRM_S:
            return
        self.epoch += 1
        self.new.append(NewEpochAt(self.epoch, self.run_keys[0], "counter_reset"))
        for k in self.run_keys:
            self.outcome[k] = (GOOD, self.epoch)
        self.good, self.run, self.run_keys = run, None, []

    def _drop_run(self) -> None:
        for k in self.run_keys:
            self.outcome[k] = (GLITCH, self.epoch)
        self.run, self.run_keys = None, []

    def finish(self) -> None:
        """The pending run's readings stay suspect (a later reading decides them)."""
        for k in self.run_keys:
            self.outcome[k] = (SUSPECT, self.epoch)


@dataclass(frozen=True, slots=True)
class Anchor:
    """A good reading (or a rollup's first/last reading) next to a late one."""

    t: float
    imp: float
    exp: float


def late_fits(
    t: float, imp: float, exp: float, before: Anchor | None, after: Anchor | None, rate: float
) -> bool:
    """A reading older than the newest good one, against its good neighbours of the same epoch.

    Without the slack: ``C(before) ≤ C(x) ≤ C(after)`` and each side's increase ≤ r·Δt. Checking only
    the neighbours with the slack would not keep the epoch's good readings pairwise consistent (the
    slack adds up: a backfilled gap could then rise by S per late batch); without it, f(before) ≥ f(x)
    ≥ f(after), so for any good c < x: f(x) − f(c) ≤ f(before) − f(c) ≤ S, and likewise after.
    """
    if before is not None and not (
        before.imp <= imp <= before.imp + rate * (t - before.t)
        and before.exp <= exp <= before.exp + rate * (t - before.t)
    ):
        return False
    return after is None or (
        imp <= after.imp <= imp + rate * (after.t - t) and exp <= after.exp <= exp + rate * (after.t - t)
    )
