"""Energy from meter counters (docs/design.md §6).

The energy in [a, b) is C(b) − C(a), where C at an instant is the counter interpolated linearly between
the last reading before it and the first reading at or after it. Readings of one counter epoch (one
meter, counting up) are interpolated only among themselves: the energy of a bucket is the sum over the
epochs of each epoch's C(b) − C(a), with C held at its first value before the epoch's first reading and
at its last value after its last reading. So a meter replacement or counter reset never yields negative
or jump-sized energy; what flowed between the old meter's last reading and the new one's first is unknown
and counted nowhere.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import add, mul, sub, truediv


@dataclass(slots=True)
class EpochCurve:
    """The readings of one counter in one epoch, as (time, value) in time order."""

    ts: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, t: float, v: float) -> None:
        self.ts.append(t)
        self.values.append(v)

    def at(self, t: float) -> float:
        ts, vs = self.ts, self.values
        i = bisect_left(ts, t)  # first reading at or after t
        if i == 0:
            return vs[0]
        if i == len(ts):
            return vs[-1]
        t0, t1 = ts[i - 1], ts[i]
        v0, v1 = vs[i - 1], vs[i]
        if t1 <= t0:
            return v1
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def brackets(self, t: float) -> bool:
        """True when readings lie at or before t and at or after it: C(t) is measured or interpolated,
        not held at the epoch's first or last value."""
        return bool(self.ts) and self.ts[0] <= t <= self.ts[-1]


Curves = dict[int, EpochCurve]


def curves(points: Iterable[tuple[int, float, float | None, float, float | None]]) -> Curves:
    """Curves per epoch from (epoch, first_ts, first_value, last_ts, last_value), in time order.

    Rollups keep a bucket's first and last reading of each counter (counters only grow within an
    epoch, so first = min and last = max); those are exactly the readings interpolation needs at the
    boundaries of any bucket made of whole rollup buckets.
    """
    out: Curves = {}
    for epoch, t_first, v_first, t_last, v_last in points:
        curve = out.get(epoch)
        if curve is None:
            curve = out[epoch] = EpochCurve()
        # The lists directly, not add(): this loop runs once per group, thousands of times an answer.
        ts, vs = curve.ts, curve.values
        if v_first is not None:
            ts.append(t_first)
            vs.append(v_first)
        if v_last is not None and (t_last != t_first or v_first is None):
            ts.append(t_last)
            vs.append(v_last)
    return {epoch: curve for epoch, curve in out.items() if curve.ts}


def energies(all_curves: Curves, bounds: Sequence[float]) -> list[float]:
    """Energy in each bucket [bounds[j], bounds[j+1]), summed over epochs; never negative."""
    n = len(bounds) - 1
    totals = [0.0] * n
    for curve in all_curves.values():
        at_start = curve.at(bounds[0])
        for j in range(n):
            at_end = curve.at(bounds[j + 1])
            # Within an epoch counters only grow; a tiny negative is float noise or a bad reading.
            totals[j] += max(0.0, at_end - at_start)
            at_start = at_end
    return totals


def interval_energy(all_curves: Curves, start: float, end: float) -> float | None:
    """Energy in [start, end) when one epoch brackets both ends (a true interpolation), else None."""
    for curve in all_curves.values():
        if curve.brackets(start) and curve.brackets(end):
            return max(0.0, curve.at(end) - curve.at(start))
    return None


@dataclass(slots=True)
class Weights:
    """How C at each bound follows from an epoch's readings at times ``ts`` (in time order):
    C(bound j) = v[lo[j]] + (v[hi[j]] − v[lo[j]]) · w[j], held at the first or last value outside.
    Computed once per epoch and shared by every counter read at those times (the totals and the tariff
    registers are columns of the same readings)."""

    lo: list[int]
    hi: list[int]
    w: list[float]


def weights(ts: Sequence[float], bounds: Sequence[float]) -> Weights:
    """The interpolation of ``EpochCurve.at`` at every bound, with C-level iterators (``map``, ``bisect``,
    slices): this runs for every bound of every series. ``ts`` may repeat a time (a group's single
    reading as its first and last): k is the first reading at or after b, so ts[k − 1] < b ≤ ts[k] and
    the interval is never empty. Bounds increase, so those before the first reading (k = 0) and after
    the last (k = n), held at the first or last value, are a prefix and a suffix."""
    n, m = len(ts), len(bounds)
    ks = list(map(bisect_left, repeat(ts, m), bounds))
    p, q = bisect_right(ks, 0), bisect_left(ks, n)
    mid = ks[p:q]
    below = list(map(sub, mid, repeat(1)))
    t0 = list(map(ts.__getitem__, below))
    t1 = list(map(ts.__getitem__, mid))
    w = list(map(truediv, map(sub, bounds[p:q], t0), map(sub, t1, t0)))
    return Weights(
        [0] * p + below + [n - 1] * (m - q),
        [0] * p + mid + [n - 1] * (m - q),
        [0.0] * p + w + [0.0] * (m - q),
    )


def rises(values: Sequence[float], at: Weights) -> list[float]:
    """The counter's rise in each bucket between consecutive bounds; never negative (within an epoch
    counters only grow: a tiny negative is float noise)."""
    low = list(map(values.__getitem__, at.lo))
    high = list(map(values.__getitem__, at.hi))
    c = list(map(add, low, map(mul, map(sub, high, low), at.w)))
    return list(map(max, map(sub, c[1:], c[:-1]), repeat(0.0)))


@dataclass(slots=True)
class Chain:
    """One epoch's groups, one for each of the consecutive buckets a0…a1 (−1 and N: the neighbours
    outside the range) — a month of quarters, usually. Then C at bound j of a0 < j ≤ a1 lies between
    group j − 1's last reading and group j's first; bounds up to a0 hold the first value, those after a1
    the last. The same arithmetic as ``weights`` (the same bracketing readings, the same formula) with
    slices instead of a search."""

    before: int  # bounds held at the first group's first value
    after: int  # bounds held at the last group's last value
    w: list[float]  # the weights of the bounds in between


def chain(
    i: Sequence[int], first_ts: Sequence[float], last_ts: Sequence[float], bounds: Sequence[float]
) -> Chain | None:
    """The chain of groups with bucket indexes ``i`` (one epoch, in order), or None when not one."""
    if not i or i[-1] - i[0] != len(i) - 1:
        return None
    a0, a1, size = i[0], i[-1], len(bounds) - 1
    t_last, t_first = last_ts[: len(i) - 1], first_ts[1:]
    w = list(map(truediv, map(sub, bounds[a0 + 1 : a1 + 1], t_last), map(sub, t_first, t_last)))
    return Chain(a0 + 1 if a0 >= 0 else 0, size - a1, w)


def chain_rises(at: Chain, first: Sequence[float], last: Sequence[float]) -> list[float]:
    """As ``rises``, for a counter's first and last values of the chain's groups."""
    low, high = last[: len(last) - 1], first[1:]
    mid = list(map(add, low, map(mul, map(sub, high, low), at.w)))
    c = [first[0]] * at.before + mid + [last[-1]] * at.after
    return list(map(max, map(sub, c[1:], c[:-1]), repeat(0.0)))
