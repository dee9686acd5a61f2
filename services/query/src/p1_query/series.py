"""Series points from reading groups: power statistics per bucket and interpolated energies.

Built column by column (a month by quarter is ~3,000 groups and as many points of 14 fields, and
per-object Python work was most of that answer's time): the groups arrive as columns (``groups``), each
epoch's interpolation weights at the bounds are computed once and shared by the totals and the tariff
registers (``energy.weights``), and the columns go to the answer as they are (``forms.json_objects``)
or, for exports, as rows.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from itertools import compress, repeat
from operator import add, attrgetter, mul, not_, truediv
from typing import Any, Final, cast

from p1_query.energy import chain, chain_rises, curves, energies, rises, weights
from p1_query.forms import Written
from p1_query.groups import COUNTERS
from p1_query.volumes import METERS, VolumeGroup

_TOTALS: Final = ("import", "export")
Columns = Mapping[str, Sequence[Any]]
# The points as columns, in SeriesPoint's field order (``fields.POINT_FIELDS``).
PointColumns = list[Sequence[Any]]


def _by_epoch(epochs: Sequence[int]) -> list[list[int] | None]:
    """Row indexes per epoch, in time order (rows come by bucket, then epoch); None: every row."""
    if len(set(epochs)) <= 1:
        return [None]
    out: dict[int, list[int]] = {}
    for k, epoch in enumerate(epochs):
        out.setdefault(epoch, []).append(k)
    return list(out.values())


def _interleave(first: Sequence[Any], last: Sequence[Any]) -> list[Any]:
    """Each row's first then last reading: the curve's points (a single reading twice, which
    ``energy.weights`` tolerates)."""
    out: list[Any] = [None] * (2 * len(first))
    out[0::2] = first
    out[1::2] = last
    return out


def _pick(column: Sequence[Any], rows: list[int] | None) -> Sequence[Any]:
    return column if rows is None else [column[k] for k in rows]


def _own_curve(cols: Columns, counter: str, rows: list[int] | None, stamps: list[float]) -> list[float]:
    """One epoch's rises of a counter that some of its readings lack: its own curve, of its readings."""
    points = zip(
        repeat(0),
        _pick(cols["first_ts"], rows),
        _pick(cols[f"{counter}_first"], rows),
        _pick(cols["last_ts"], rows),
        _pick(cols[f"{counter}_last"], rows),
    )
    return energies(curves(points), stamps)


def _counter_energies(cols: Columns, stamps: list[float], size: int) -> dict[str, list[float] | None]:
    """Energy per bucket of every counter, summed over epochs (docs/design.md §6); None for a counter
    no reading has."""
    totals: dict[str, list[float] | None] = {}
    for counter in COUNTERS:
        first = cols[f"{counter}_first"]
        totals[counter] = None if first.count(None) == len(first) else [0.0] * size
    for rows in _by_epoch(cols["epoch"]):
        first_ts, last_ts = _pick(cols["first_ts"], rows), _pick(cols["last_ts"], rows)
        linked = chain(cols["i"], first_ts, last_ts, stamps) if rows is None else None
        at = None if linked is not None else weights(_interleave(first_ts, last_ts), stamps)
        for counter, total in totals.items():
            if total is None:
                continue
            first, last = _pick(cols[f"{counter}_first"], rows), _pick(cols[f"{counter}_last"], rows)
            if None in first or None in last:
                rise = _own_curve(cols, counter, rows, stamps)
            elif min(first) == max(last):  # (export without solar panels): it rose nowhere
                rise = [0.0] * size
            elif linked is not None:
                rise = chain_rises(linked, first, last)
            else:
                assert at is not None
                rise = rises(_interleave(first, last), at)
            totals[counter] = list(map(add, total, rise)) if rows is not None else rise
    return totals


def counter_energies(cols: Columns, bounds: Sequence[datetime]) -> dict[str, list[float] | None]:
    """Energy per bucket of every counter (kWh), summed over epochs; None for a counter no reading has.
    The costs of a bucket split at a plan change read its parts' energies here."""
    return _counter_energies(cols, list(map(datetime.timestamp, bounds)), len(bounds) - 1)


def counter_energies_at(cols: Columns, stamps: list[float]) -> dict[str, list[float] | None]:
    """``counter_energies`` at bounds given as UTC seconds (a year of quarters: no datetimes made)."""
    return _counter_energies(cols, stamps, len(stamps) - 1)


def _present(cols: Columns, counter: str, size: int) -> list[bool] | None:
    """Buckets where some reading has the counter; None: wherever there are readings at all (or
    nowhere: a counter no reading has is null throughout anyway)."""
    first = cols[f"{counter}_first"]
    if None not in first or first.count(None) == len(first):
        return None
    out = [False] * size
    for j, value in zip(cols["i"], first, strict=True):
        if 0 <= j < size and value is not None:
            out[j] = True
    return out


def _power(cols: Columns, size: int) -> tuple[list[int], list[Any], list[Any], list[Any]]:
    """Per bucket: readings, power sum, minimum, maximum. One row per bucket for a run of consecutive
    buckets, in order (the usual case, with perhaps empty buckets at the ends), is a slice assignment;
    else buckets of several epochs, or gaps, are merged row by row."""
    i = cols["i"]
    a, b = bisect_left(i, 0), bisect_left(i, size)
    count: list[int] = [0] * size
    total: list[Any] = [None] * size
    low: list[Any] = [None] * size
    high: list[Any] = [None] * size
    if a == b:
        return count, total, low, high
    first, last = i[a], i[b - 1]
    if last - first == b - a - 1 and len(set(cols["epoch"])) <= 1:
        into, part = slice(first, last + 1), slice(a, b)
        count[into], total[into] = cols["n"][part], cols["power_sum"][part]
        low[into], high[into] = cols["power_min"][part], cols["power_max"][part]
        return count, total, low, high
    for j, n, s, lo, hi in zip(
        i, cols["n"], cols["power_sum"], cols["power_min"], cols["power_max"], strict=True
    ):
        if not 0 <= j < size or n == 0:
            continue
        if count[j]:
            total[j], low[j], high[j] = total[j] + s, min(low[j], lo), max(high[j], hi)
        else:
            total[j], low[j], high[j] = s, lo, hi
        count[j] += n
    return count, total, low, high


def _volume(groups: Sequence[VolumeGroup], stamps: list[float], size: int) -> list[float | None]:
    """One meter's volume per bucket; null where no epoch's readings span any part of the bucket (no
    meter, or its next reading not in yet: a DSMR 4 hour is known once the next hour's value is)."""
    out: list[float | None] = [None] * size
    epochs: dict[int, list[VolumeGroup]] = {}
    for group in sorted(groups, key=attrgetter("first_ts")):
        epochs.setdefault(group.epoch, []).append(group)
    for mine in epochs.values():
        ts = _interleave([g.first_ts for g in mine], [g.last_ts for g in mine])
        values = _interleave([g.first_value for g in mine], [g.last_value for g in mine])
        rise = rises(values, weights(ts, stamps))
        # [t_first, t_last] meets bucket j when t_first < b[j+1] and t_last > b[j].
        for j in range(max(0, bisect_right(stamps, ts[0]) - 1), min(size, bisect_left(stamps, ts[-1]))):
            out[j] = (out[j] or 0.0) + rise[j]
    return out


def _rounded(
    values: list[float] | list[float | None] | None, empty: Sequence[int], size: int, digits: int = 6
) -> list[Any]:
    """Rounded to ``digits``; None in the ``empty`` buckets (no readings, or none with this counter)."""
    if values is None:
        return [None] * size
    scale = 10.0**digits
    if None in values:
        out: list[Any] = [None if v is None else round(v * scale) / scale for v in values]
    else:
        # round(v·10^d)/10^d with C-level maps: half the time of round(v, d), the same result but where
        # v·10^d lands within an ulp of a tie (then the neighbour at the 6th decimal)
        out = list(
            map(truediv, map(round, map(mul, cast(list[float], values), repeat(scale))), repeat(scale))
        )
    for j in empty:
        out[j] = None
    return out


def _empty(shown: Sequence[Any]) -> list[int]:
    """The buckets where ``shown`` is falsy: usually none or a few, found in C."""
    return list(compress(range(len(shown)), map(not_, shown)))


def local_bounds(bounds: Sequence[datetime], tz: tzinfo) -> list[datetime]:
    return list(map(datetime.astimezone, bounds, repeat(tz)))


def build_points(
    cols: Columns, volumes: Sequence[VolumeGroup], bounds: Sequence[datetime], local: Sequence[Any]
) -> PointColumns:
    """One point per bucket [bounds[j], bounds[j+1]), as columns in ``SeriesPoint``'s field order; a
    bucket without readings has samples 0 and nulls, even where interpolation across a gap would give
    it energy, so that charts show the gap. ``local``: the bounds as the answer writes them (in the
    caller's zone, ``local_bounds``, or their JSON text)."""
    size = len(bounds) - 1
    stamps = list(map(datetime.timestamp, bounds))
    energy = _counter_energies(cols, stamps, size)
    count, total, low, high = _power(cols, size)
    empty = _empty(count)
    # The mean power; an empty bucket's (sum None, count 0) is computed as 0/1 and nulled.
    filled, sums = list(count), list(total)
    for j in empty:
        filled[j], sums[j] = 1, 0.0
    avg = _rounded(list(map(truediv, sums, filled)), empty, size, 3)
    meters = {m: _volume([v for v in volumes if v.meter == m], stamps, size) for m in METERS}
    tariffs = [c for c in COUNTERS if c not in _TOTALS]
    starts, ends = local[:-1], local[1:]
    if isinstance(local, Written):  # written once: keep them written
        starts, ends = Written(starts), Written(ends)
    return [
        starts,
        ends,
        count,
        avg,
        low,
        high,
        *(_rounded(energy[c], empty, size) for c in _TOTALS),
        *(_rounded(meters[m], (), size) for m in METERS),
        *(_rounded(energy[c], _empty(_present(cols, c, size) or count), size) for c in tariffs),
    ]


def point_rows(points: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """The points as rows (exports)."""
    return list(zip(*points, strict=True))
