"""Series points from reading groups: power statistics per bucket and interpolated energies.

Built column-wise (a month by quarter is ~3,000 groups and as many points; per-object work there was
most of the answer's time): the statement's rows are transposed once, each epoch's interpolation weights
at the bounds are computed once and shared by the totals and the tariff registers (``energy.weights``),
and the points are the answer's dicts, written by ``answers`` with the same serializer as the models.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, tzinfo
from typing import Any, Final

from p1_query.energy import curves, energies, rises, weights
from p1_query.fields import POINT_FIELDS
from p1_query.groups import COUNTERS, Group
from p1_query.volumes import METERS, VolumeGroup

_GROUP_FIELDS: Final = tuple(f.name for f in fields(Group))
_TOTALS: Final = ("import", "export")
Columns = dict[str, Sequence[Any]]


def _columns(rows: Sequence[Any]) -> Columns:
    """The statement's rows (``Group``'s field order) as columns; one C-level transposition."""
    if not rows:
        return {name: () for name in _GROUP_FIELDS}
    return dict(zip(_GROUP_FIELDS, zip(*rows, strict=True), strict=True))


def _by_epoch(epochs: Sequence[int]) -> list[list[int] | None]:
    """Row indexes per epoch, in time order (rows come by bucket, then epoch); None: every row."""
    if len(set(epochs)) <= 1:
        return [None]
    out: dict[int, list[int]] = {}
    for k, epoch in enumerate(epochs):
        out.setdefault(epoch, []).append(k)
    return list(out.values())


def _interleave(first: Sequence[Any], last: Sequence[Any]) -> list[Any]:
    """Each row's first then last reading: the curve's points (a single reading twice, which the
    interpolation tolerates: its weight is never a division by a zero interval)."""
    out: list[Any] = [None] * (2 * len(first))
    out[0::2] = first
    out[1::2] = last
    return out


def _pick(column: Sequence[Any], rows: list[int] | None) -> Sequence[Any]:
    return column if rows is None else [column[k] for k in rows]


def _own_curve(
    first_ts: Sequence[float],
    first: Sequence[Any],
    last_ts: Sequence[float],
    last: Sequence[Any],
    stamps: list[float],
) -> list[float]:
    """One epoch's rises of a counter that some of its readings lack: its own curve."""
    points = zip([0] * len(first), first_ts, first, last_ts, last, strict=True)
    return energies(curves(points), stamps)


def _counter_energies(cols: Columns, stamps: list[float], size: int) -> dict[str, list[float]]:
    """Energy per bucket of every counter, summed over epochs (docs/design.md §6)."""
    totals = {counter: [0.0] * size for counter in COUNTERS}
    for rows in _by_epoch(cols["epoch"]):
        ts = _interleave(_pick(cols["first_ts"], rows), _pick(cols["last_ts"], rows))
        at = weights(ts, stamps)
        for counter, total in totals.items():
            first, last = _pick(cols[f"{counter}_first"], rows), _pick(cols[f"{counter}_last"], rows)
            values = _interleave(first, last)
            if None in values:  # a counter some readings lack: its own curve, of its readings only
                if values.count(None) == len(values):
                    continue
                rise = _own_curve(
                    _pick(cols["first_ts"], rows), first, _pick(cols["last_ts"], rows), last, stamps
                )
            else:
                rise = rises(values, at)
            totals[counter] = list(map(float.__add__, total, rise))
    return totals


def _present(cols: Columns, counter: str, size: int) -> list[bool] | None:
    """Buckets where some reading has the counter; None: wherever there are readings at all."""
    first = cols[f"{counter}_first"]
    if None not in first:
        return None
    out = [False] * size
    for j, value in zip(cols["i"], first, strict=True):
        if 0 <= j < size and value is not None:
            out[j] = True
    return out


def _power(cols: Columns, size: int) -> tuple[list[int], list[Any], list[Any], list[Any]]:
    """Per bucket: readings, power sum, minimum, maximum (buckets of several epochs merged)."""
    count = [0] * size
    total: list[Any] = [None] * size
    low: list[Any] = [None] * size
    high: list[Any] = [None] * size
    for j, n, s, lo, hi in zip(
        cols["i"], cols["n"], cols["power_sum"], cols["power_min"], cols["power_max"], strict=True
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
    for group in groups:
        epochs.setdefault(group.epoch, []).append(group)
    for mine in epochs.values():
        ts = _interleave([g.first_ts for g in mine], [g.last_ts for g in mine])
        values = _interleave([g.first_value for g in mine], [g.last_value for g in mine])
        rise = rises(values, weights(ts, stamps))
        # [t_first, t_last] meets bucket j when t_first < b[j+1] and t_last > b[j].
        for j in range(max(0, bisect_right(stamps, ts[0]) - 1), min(size, bisect_left(stamps, ts[-1]))):
            out[j] = (out[j] or 0.0) + rise[j]
    return out


def _rounded(values: Sequence[float | None], keep: Sequence[bool] | None, count: Sequence[int]) -> list[Any]:
    shown = count if keep is None else keep
    return [round(v, 6) if v is not None and s else None for v, s in zip(values, shown, strict=True)]


def build_points(
    rows: Sequence[Any], volumes: Sequence[VolumeGroup], bounds: Sequence[datetime], tz: tzinfo
) -> list[dict[str, Any]]:
    """One point per bucket [bounds[j], bounds[j+1]), as the answer's dicts in ``SeriesPoint``'s field
    order; a bucket without readings has samples 0 and nulls, even where interpolation across a gap
    would give it energy, so that charts show the gap."""
    size = len(bounds) - 1
    stamps = [bound.timestamp() for bound in bounds]
    cols = _columns(rows)
    energy = _counter_energies(cols, stamps, size)
    count, total, low, high = _power(cols, size)
    local = [bound.astimezone(tz) for bound in bounds]
    meters = {m: _volume([v for v in volumes if v.meter == m], stamps, size) for m in METERS}
    columns = [
        local[:-1],
        local[1:],
        count,
        [None if s is None else round(s / n, 3) for s, n in zip(total, count, strict=True)],
        low,
        high,
        *(_rounded(energy[c], None, count) for c in _TOTALS),
        *([None if v is None else round(v, 6) for v in meters[m]] for m in METERS),
        *(_rounded(energy[c], _present(cols, c, size), count) for c in COUNTERS if c not in _TOTALS),
    ]
    return [dict(zip(POINT_FIELDS, point, strict=True)) for point in zip(*columns, strict=True)]
