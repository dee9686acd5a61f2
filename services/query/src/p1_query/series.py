"""Series points from reading groups: power statistics per bucket and interpolated energies."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from operator import attrgetter
from typing import Any, Final

from pydantic import TypeAdapter

from p1_contracts.models import SeriesPoint
from p1_query.energy import Curves, curves, energies
from p1_query.groups import COUNTERS, Group

_FIRST: Final = {counter: attrgetter(f"{counter}_first") for counter in COUNTERS}
_LAST: Final = {counter: attrgetter(f"{counter}_last") for counter in COUNTERS}
_POINTS: Final = TypeAdapter(list[SeriesPoint])


def _counter_curves(groups: Sequence[Group], counter: str) -> Curves:
    first, last = _FIRST[counter], _LAST[counter]
    return curves((group.epoch, group.first_ts, first(group), group.last_ts, last(group)) for group in groups)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(slots=True)
class _Buckets:
    """Per bucket: reading count, power statistics, and whether gas and water counters were read."""

    count: list[int]
    power_sum: list[float | None]
    power_min: list[float | None]
    power_max: list[float | None]
    has_gas: list[bool]
    has_water: list[bool]


def _buckets(groups: Sequence[Group], size: int) -> _Buckets:
    # One pass with the lists in locals: this loop runs once per group (a year of quarters: 35,000).
    count = [0] * size
    power_sum: list[float | None] = [None] * size
    power_min: list[float | None] = [None] * size
    power_max: list[float | None] = [None] * size
    has_gas, has_water = [False] * size, [False] * size
    for group in groups:
        j = group.i
        if not 0 <= j < size or group.n == 0:
            continue
        count[j] += group.n
        if group.power_sum is not None:
            power_sum[j] = (power_sum[j] or 0.0) + group.power_sum
        if group.power_min is not None:
            low = power_min[j]
            power_min[j] = group.power_min if low is None else min(low, group.power_min)
        if group.power_max is not None:
            high = power_max[j]
            power_max[j] = group.power_max if high is None else max(high, group.power_max)
        has_gas[j] = has_gas[j] or group.gas_first is not None
        has_water[j] = has_water[j] or group.water_first is not None
    return _Buckets(count, power_sum, power_min, power_max, has_gas, has_water)


def build_points(groups: Sequence[Group], bounds: Sequence[datetime], tz: tzinfo) -> list[SeriesPoint]:
    """One point per bucket [bounds[j], bounds[j+1]); a bucket without readings has samples 0 and
    nulls, even where interpolation across a gap would give it energy, so that charts show the gap."""
    size = len(bounds) - 1
    stamps = [bound.timestamp() for bound in bounds]
    # Gas and water are absent on many meters: no curve, no work.
    energy = {
        counter: energies(_counter_curves(groups, counter), stamps)
        if any(_FIRST[counter](group) is not None for group in groups)
        else [0.0] * size
        for counter in COUNTERS
    }
    buckets = _buckets(groups, size)
    local = [bound.astimezone(tz) for bound in bounds]
    points: list[dict[str, Any]] = []
    for j in range(size):
        count, total = buckets.count[j], buckets.power_sum[j]
        filled = count > 0
        points.append(
            {
                "start": local[j],
                "end": local[j + 1],
                "samples": count,
                "power_avg_w": None if total is None or not filled else round(total / count, 3),
                "power_min_w": buckets.power_min[j],
                "power_max_w": buckets.power_max[j],
                "import_kwh": _round(energy["import"][j], 6) if filled else None,
                "export_kwh": _round(energy["export"][j], 6) if filled else None,
                "gas_m3": _round(energy["gas"][j], 6) if buckets.has_gas[j] else None,
                "water_m3": _round(energy["water"][j], 6) if buckets.has_water[j] else None,
            }
        )
    # Validated in one call of the contract's validator rather than one model constructor per point.
    return _POINTS.validate_python(points)
