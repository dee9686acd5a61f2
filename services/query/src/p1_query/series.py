"""Series points from reading groups: power statistics per bucket and interpolated energies."""

from collections.abc import Sequence
from datetime import datetime, tzinfo
from operator import attrgetter
from typing import Any, Final

from pydantic import TypeAdapter

from p1_contracts.models import SeriesPoint

from .energy import Curves, curves, energies
from .store import Group

_FIRST: Final = {c: attrgetter(f"{c}_first") for c in ("import", "export", "gas", "water")}
_LAST: Final = {c: attrgetter(f"{c}_last") for c in ("import", "export", "gas", "water")}
_POINTS: Final = TypeAdapter(list[SeriesPoint])


def _counter_curves(groups: Sequence[Group], counter: str) -> Curves:
    first, last = _FIRST[counter], _LAST[counter]
    return curves((g.epoch, g.first_ts, first(g), g.last_ts, last(g)) for g in groups)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def build_points(groups: Sequence[Group], bounds: Sequence[datetime], tz: tzinfo) -> list[SeriesPoint]:
    """One point per bucket [bounds[j], bounds[j+1]); a bucket without readings has samples 0 and
    nulls, even where interpolation across a gap would give it energy, so that charts show the gap."""
    n = len(bounds) - 1
    stamps = [b.timestamp() for b in bounds]
    # Gas and water are absent on many meters: no curve, no work.
    per_counter = {
        c: energies(_counter_curves(groups, c), stamps)
        if any(_FIRST[c](g) is not None for g in groups)
        else [0.0] * n
        for c in ("import", "export", "gas", "water")
    }
    has_gas = [False] * n
    has_water = [False] * n
    count = [0] * n
    p_sum: list[float | None] = [None] * n
    p_min: list[float | None] = [None] * n
    p_max: list[float | None] = [None] * n
    for g in groups:
        j = g.i
        if not 0 <= j < n or g.n == 0:
            continue
        count[j] += g.n
        if g.power_sum is not None:
            p_sum[j] = (p_sum[j] or 0.0) + g.power_sum
        if g.power_min is not None:
            cur = p_min[j]
            p_min[j] = g.power_min if cur is None else min(cur, g.power_min)
        if g.power_max is not None:
            cur = p_max[j]
            p_max[j] = g.power_max if cur is None else max(cur, g.power_max)
        has_gas[j] = has_gas[j] or g.gas_first is not None
        has_water[j] = has_water[j] or g.water_first is not None

    local = [b.astimezone(tz) for b in bounds]
    points: list[dict[str, Any]] = []
    for j in range(n):
        filled = count[j] > 0
        total = p_sum[j]
        points.append(
            {
                "start": local[j],
                "end": local[j + 1],
                "samples": count[j],
                "power_avg_w": None if total is None or not filled else round(total / count[j], 3),
                "power_min_w": p_min[j],
                "power_max_w": p_max[j],
                "import_kwh": _round(per_counter["import"][j], 6) if filled else None,
                "export_kwh": _round(per_counter["export"][j], 6) if filled else None,
                "gas_m3": _round(per_counter["gas"][j], 6) if has_gas[j] else None,
                "water_m3": _round(per_counter["water"][j], 6) if has_water[j] else None,
            }
        )
    # Validated in one call of the contract's validator rather than one model constructor per point.
    return _POINTS.validate_python(points)
