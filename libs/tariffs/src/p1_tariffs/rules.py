"""Which plan is in force, and from when: the one owner of the rule (migration 0010 restates it).

A plan row names one device or ``'*'`` (every device) and starts at ``starts_at``: its ``valid_from`` at
00:00 local time in its zone (``starts_at``, the one place that converts it). For a device at an instant
the plan in force is the row with the latest ``starts_at`` <= the instant among the rows naming the
device or ``'*'``; of a named row and a ``'*'`` row with the same ``starts_at``, the named one. So a later
plan ends the earlier one at its start, and a past instant is always priced with the plan of its time.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

EVERY_DEVICE: Final = "*"


class Dated(Protocol):
    """What the rule needs of a plan row."""

    @property
    def device_id(self) -> str: ...

    @property
    def starts_at(self) -> datetime: ...


P = TypeVar("P", bound=Dated)


@dataclass(frozen=True)
class TariffPlan:
    """One row of ``tariff_plans`` (migration 0010; the loader writes these, query reads them).

    Prices are excl. VAT, in ``currency`` per kWh. A direction is either dynamic (its register prices
    None: the market price of ``energy_prices`` plus its markup) or has both register prices (t1 day,
    t2 night; equal for a single price). ``capacity_eur_per_kw_year`` None: the ledger's own price
    (``grid_operator``'s figure, the override or the fallback)."""

    name: str
    device_id: str
    valid_from: date
    tz: str
    starts_at: datetime
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

    @classmethod
    def from_record(cls, record: Any) -> "TariffPlan":
        """From a row with these columns (an asyncpg Record, a dict)."""
        return cls(**{name: record[name] for name in PLAN_COLUMNS})


# The columns of tariff_plans the loader writes, in TariffPlan's order (loaded_at is the database's).
PLAN_COLUMNS: Final[tuple[str, ...]] = tuple(TariffPlan.__dataclass_fields__)


def starts_at(valid_from: date, tz: str) -> datetime:
    """The first instant of the local date ``valid_from`` in ``tz`` (UTC): 00:00 local, DST-safe.

    Where 00:00 exists (every zone on most days) it is that instant, the earlier one when it happens
    twice. Where the clocks jump over midnight (America/Santiago in September: 00:00 → 01:00), the day
    begins at the jump, found by bisection on whole seconds between two instants certainly before and
    after it (no zone is more than 14 h from UTC)."""
    zone = ZoneInfo(tz)
    midnight = datetime.combine(valid_from, time(0), tzinfo=zone)  # fold=0: the earlier of two
    if midnight.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == midnight.replace(tzinfo=None):
        return midnight.astimezone(UTC)
    naive = datetime.combine(valid_from, time(0), tzinfo=UTC)
    lo, hi = naive - timedelta(hours=15), naive + timedelta(hours=15)  # local date of lo < valid_from <= hi's
    for _ in range(20):  # 30 h in seconds < 2**17: bounded
        if hi - lo <= timedelta(seconds=1):
            break
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).date() >= valid_from:
            hi = mid
        else:
            lo = mid
    return hi


def _applies(plan: Dated, device_id: str) -> bool:
    return plan.device_id == device_id or plan.device_id == EVERY_DEVICE


def _rank(plan: Dated) -> tuple[datetime, bool]:
    # Later start first; at the same start the row naming the device beats '*'.
    return plan.starts_at, plan.device_id != EVERY_DEVICE


def in_force(plans: Iterable[P], device_id: str, at: datetime) -> P | None:
    """The plan in force for ``device_id`` at the aware instant ``at``; None when none has started."""
    best: P | None = None
    for plan in plans:
        if _applies(plan, device_id) and plan.starts_at <= at and (best is None or _rank(plan) > _rank(best)):
            best = plan
    return best


@dataclass(frozen=True)
class Span(Generic[P]):
    """[start, end) during which ``plan`` is in force (None: no plan)."""

    start: datetime
    end: datetime
    plan: P | None


def spans(plans: Sequence[P], device_id: str, start: datetime, end: datetime) -> list[Span[P]]:
    """The plans in force for ``device_id`` over [start, end), split exactly where one ends and the next
    begins (consecutive spans of the same plan joined): what a bucket spanning a plan change needs."""
    if end <= start:
        return []
    mine = [p for p in plans if _applies(p, device_id)]
    cuts = sorted({start, *(p.starts_at for p in mine if start < p.starts_at < end)})
    out: list[Span[P]] = []
    for i, cut in enumerate(cuts):
        stop = cuts[i + 1] if i + 1 < len(cuts) else end
        plan = in_force(mine, device_id, cut)
        if out and out[-1].plan is plan:
            out[-1] = Span(out[-1].start, stop, plan)
        else:
            out.append(Span(cut, stop, plan))
    return out
