"""What each series bucket cost: ``import_cost_eur`` and ``export_revenue_eur`` (README, "What it costs").

A bucket within one plan: fixed prices × the bucket's register energies (the series' own), or, for a
dynamic direction, each quarter's energy × (market price + markup) summed (``costs_sql``). A bucket that
spans a plan change (plans start at a local midnight, on the quarter grid) is split exactly there: its
parts' energies are read again from the rollup whose grid holds the split (``series.counter_energies``),
and priced each by its plan. VAT per plan on the sum. Null where no plan covers the whole bucket, the
bucket has no readings, a register price cannot apply (a meter without registers and two register
prices), or energy has no market price.

Series costs are floats rounded to 6 decimals, like the energies; the bill rounds to cents (``bill``).
"""

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from p1_query.buckets import source_for
from p1_query.costs_sql import Direction, Prices, prices_between
from p1_query.db import Conn
from p1_query.fields import POINT_FIELDS
from p1_query.groups import fetch_group_columns
from p1_query.plans import Plan, Segment, in_force
from p1_query.price_sums import dynamic_sums
from p1_query.series import PointColumns, counter_energies

_AT: Final = {name: k for k, name in enumerate(POINT_FIELDS)}
# Buckets that lie within one market price interval (prices are hourly or quarter-hourly): priced by the
# bucket's own energy; longer ones by their quarters (``costs_sql``).
_WITHIN_PRICE: Final = ("1m", "15m")
Costs = tuple[list[float | None], list[float | None]]


@dataclass(frozen=True, slots=True)
class Energy:
    """A bucket's (or part's) energies in kWh: total and registers of one direction."""

    total: float | None
    t1: float | None
    t2: float | None


def fixed_amount(energy: Energy, t1: float, t2: float) -> float | None:
    """Register energies × register prices; a meter without registers only when both prices agree."""
    if energy.t1 is not None and energy.t2 is not None:
        return energy.t1 * t1 + energy.t2 * t2
    if energy.total is not None and t1 == t2:
        return energy.total * t1
    return None


def dynamic_amount(sums: Direction | None, markup: float) -> float | None:
    """Σ quarter energy × market price + markup × that energy; None when some energy had no price."""
    if sums is None or sums.unpriced > 0:
        return None
    return sums.market + markup * sums.priced


@dataclass(frozen=True, slots=True)
class PlanPart:
    """One plan's part of a bucket or a bill's month: its energies (import, export) and, for a dynamic
    direction, its quarter sums."""

    segment: Segment
    imports: Energy
    exports: Energy
    dynamic: tuple[Direction | None, Direction | None] | None


def dynamic_directions(segments: Sequence[Segment]) -> tuple[str, ...]:
    """The directions some segment prices dynamically, in (import, export) order."""
    out = []
    if any(s.plan.import_dynamic for s in segments):
        out.append("import")
    if any(s.plan.export_dynamic for s in segments):
        out.append("export")
    return tuple(out)


def _price(part: PlanPart, importing: bool) -> float | None:
    plan = part.segment.plan
    energy = part.imports if importing else part.exports
    if importing and plan.import_dynamic:
        return dynamic_amount(part.dynamic[0] if part.dynamic else None, float(plan.import_markup))
    if not importing and plan.export_dynamic:
        return dynamic_amount(part.dynamic[1] if part.dynamic else None, float(plan.export_markup))
    t1, t2 = (plan.import_t1, plan.import_t2) if importing else (plan.export_t1, plan.export_t2)
    assert t1 is not None
    assert t2 is not None
    return fixed_amount(energy, float(t1), float(t2))


def _sum_vat(parts: Sequence[PlanPart], importing: bool) -> float | None:
    total = 0.0
    for part in parts:
        amount = _price(part, importing)
        if amount is None:
            return None
        total += amount * (1.0 + float(part.segment.plan.vat))
    return round(total, 6)


def _point_energy(points: PointColumns, j: int, direction: str) -> Energy:
    return Energy(
        points[_AT[f"{direction}_kwh"]][j],
        points[_AT[f"{direction}_t1_kwh"]][j],
        points[_AT[f"{direction}_t2_kwh"]][j],
    )


def _bucket_prices(prices: Prices, a: float, b: float) -> tuple[float | None, float | None] | None:
    """The market prices of the interval holding [a, b), or None when none holds all of it."""
    k = bisect_right(prices.starts, a) - 1
    if k < 0 or prices.ends[k] < b:
        return None
    return prices.imports[k], prices.exports[k]


def _within_price(
    prices: Prices, points: PointColumns, j: int, a: float, b: float
) -> tuple[Direction, Direction]:
    """A short bucket's dynamic sums from its own energy and the one price interval holding it."""
    found = _bucket_prices(prices, a, b)
    out = []
    for k, direction in enumerate(("import", "export")):
        energy = points[_AT[f"{direction}_kwh"]][j] or 0.0
        price = None if found is None else found[k]
        out.append(Direction(0.0, 0.0, energy) if price is None else Direction(energy * price, energy, 0.0))
    return out[0], out[1]


async def _split_energies(
    conn: Conn, device_id: str, a: float, b: float, cuts: list[float]
) -> list[tuple[Energy, Energy]]:
    """The (import, export) energies of [a, c1), [c1, c2), …, [cn, b): the bucket split at plan changes."""
    bounds = [datetime.fromtimestamp(t, UTC) for t in (a, *cuts, b)]
    cols = await fetch_group_columns(conn, device_id, source_for("1h", bounds), bounds)
    energy = counter_energies(cols, bounds)

    def at(counter: str, k: int) -> float | None:
        values = energy[counter]
        return None if values is None else values[k]

    return [
        tuple(Energy(at(d, k), at(f"{d}_t1", k), at(f"{d}_t2", k)) for d in ("import", "export"))  # type: ignore[misc]
        for k in range(len(bounds) - 1)
    ]


async def point_costs(
    conn: Conn,
    device_id: str,
    plans: Sequence[Plan],
    bucket: str,
    bounds: Sequence[datetime],
    points: PointColumns,
) -> Costs:
    """(import_cost_eur, export_revenue_eur) per bucket of ``points`` (``series.build_points``)."""
    size = len(bounds) - 1
    stamps = [bound.timestamp() for bound in bounds]
    segments = in_force(plans, device_id, stamps[0], stamps[-1])
    costs: list[float | None] = [None] * size
    revenues: list[float | None] = [None] * size
    if not segments:
        return costs, revenues
    dynamic: dict[tuple[int, int], tuple[Direction | None, Direction | None]] = {}
    prices: Prices | None = None
    if dynamic_directions(segments):
        if bucket in _WITHIN_PRICE:
            prices = await prices_between(conn, bounds[0], bounds[-1])
        else:
            starts = [datetime.fromtimestamp(s.start, UTC) for s in segments]
            dynamic = await dynamic_sums(conn, device_id, list(bounds), starts, dynamic_directions(segments))
    samples = points[_AT["samples"]]
    fixed = [_fixed_rates(segment.plan) for segment in segments]
    columns = [points[_AT[name]] for name in _ENERGY_FIELDS]
    k = 0
    for j in range(size):
        a, b = stamps[j], stamps[j + 1]
        while k < len(segments) and segments[k].end <= a:
            k += 1
        mine = _covering(segments, k, a, b)
        if mine is None or not samples[j]:
            continue
        rates = fixed[k]
        if len(mine) == 1 and rates is not None:  # the usual bucket: no objects, plain arithmetic
            i, i1, i2, x, x1, x2 = (column[j] for column in columns)
            p1, p2, q1, q2, vat = rates
            costs[j] = _with_vat(fixed_amount(Energy(i, i1, i2), p1, p2), vat)
            revenues[j] = _with_vat(fixed_amount(Energy(x, x1, x2), q1, q2), vat)
            continue
        if len(mine) == 1:
            s = k
            sums = _within_price(prices, points, j, a, b) if prices is not None else dynamic.get((j, s))
            parts = [
                PlanPart(
                    mine[0], _point_energy(points, j, "import"), _point_energy(points, j, "export"), sums
                )
            ]
        else:
            cuts = [segment.start for segment in mine[1:]]
            energies = await _split_energies(conn, device_id, a, b, cuts)
            parts = [
                PlanPart(segment, imports, exports, dynamic.get((j, k + n)))
                for n, (segment, (imports, exports)) in enumerate(zip(mine, energies, strict=True))
            ]
        costs[j], revenues[j] = _sum_vat(parts, True), _sum_vat(parts, False)
    return costs, revenues


_ENERGY_FIELDS: Final = (
    "import_kwh",
    "import_t1_kwh",
    "import_t2_kwh",
    "export_kwh",
    "export_t1_kwh",
    "export_t2_kwh",
)


def _fixed_rates(plan: Plan) -> tuple[float, float, float, float, float] | None:
    """(import t1, t2, export t1, t2, 1 + VAT) of a plan fixed in both directions, else None."""
    prices = (plan.import_t1, plan.import_t2, plan.export_t1, plan.export_t2)
    if plan.import_dynamic or plan.export_dynamic or None in prices:
        return None
    p1, p2, q1, q2 = (float(p) for p in prices if p is not None)
    return p1, p2, q1, q2, 1.0 + float(plan.vat)


def _with_vat(amount: float | None, vat: float) -> float | None:
    return None if amount is None else round(amount * vat, 6)


def _covering(segments: Sequence[Segment], k: int, a: float, b: float) -> list[Segment] | None:
    """The segments from ``k`` on that together cover [a, b) (they are contiguous), or None."""
    mine: list[Segment] = []
    for segment in segments[k:]:
        if segment.start >= b:
            break
        mine.append(segment)
    if not mine or mine[0].start > a or mine[-1].end < b:
        return None
    return mine


def with_costs(points: PointColumns, costs: Costs) -> list[Sequence[Any]]:
    """The point columns with the two cost columns, in ``SeriesPoint``'s order."""
    out: list[Sequence[Any]] = [*points, costs[0], costs[1]]
    assert len(out) == len(POINT_FIELDS)
    return out
