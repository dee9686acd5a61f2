"""The tariff plans in force for a device (migration 0010), read once per request.

The in-force rule is migration 0010's: at an instant, the plan with the latest ``starts_at`` at or before
it among the rows naming the device or ``'*'``; of a named row and a ``'*'`` row with the same
``starts_at``, the named one. So a later plan ends the earlier one at its start. (Stated here because
query is the only reader of plans at request time; the loader writes ``starts_at`` — ``valid_from`` at
local midnight in the plan's zone — and it is the only conversion of a plan's date.)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from p1_query.db import Conn


@dataclass(frozen=True, slots=True)
class Plan:
    """One row of ``tariff_plans``: prices excl. VAT in ``currency`` per kWh; a direction's register
    prices are None when that direction is dynamic (market price + markup)."""

    name: str
    starts_at: datetime
    tz: str
    import_t1: Decimal | None
    import_t2: Decimal | None
    import_dynamic: bool
    import_markup: Decimal
    export_t1: Decimal | None
    export_t2: Decimal | None
    export_dynamic: bool
    export_markup: Decimal
    fixed_eur_per_month: Decimal
    capacity_eur_per_kw_year: Decimal | None
    grid_operator: str | None
    vat: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Segment:
    """A plan in force over [start, end) (UTC seconds)."""

    start: float
    end: float
    plan: Plan


_PLANS_SQL: Final = """
SELECT name, starts_at, tz, import_t1, import_t2, import_dynamic, import_markup, export_t1, export_t2,
       export_dynamic, export_markup, fixed_eur_per_month, capacity_eur_per_kw_year, grid_operator, vat,
       currency
  FROM tariff_plans WHERE device_id = $1 OR device_id = '*'
 ORDER BY starts_at, device_id = '*'"""


async def device_plans(conn: Conn, device_id: str) -> list[Plan]:
    """The device's plans in time order, one per start (the named row where a '*' row starts too)."""
    rows = await conn.fetch(_PLANS_SQL, device_id)
    out: list[Plan] = []
    for row in rows:
        if out and out[-1].starts_at == row["starts_at"]:
            continue  # the named row came first (ORDER BY … device_id = '*')
        out.append(Plan(*row.values()))
    return out


def in_force(plans: Sequence[Plan], start: float, end: float) -> list[Segment]:
    """The plans in force within [start, end), in time order, each clipped to it; the part before the
    first plan's start is in no segment."""
    out: list[Segment] = []
    starts = [plan.starts_at.timestamp() for plan in plans]
    for k, plan in enumerate(plans):
        a = max(start, starts[k])
        b = min(end, starts[k + 1] if k + 1 < len(plans) else end)
        if a < b:
            out.append(Segment(a, b, plan))
    return out
