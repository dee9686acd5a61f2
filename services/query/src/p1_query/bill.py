"""The bill of one local calendar month (README, "What it costs"), from what ``answers.bill_json`` read.

Each line is priced by one plan and rounded half-up to the cent; the total is the sum of the rounded
lines, so the lines add up to it to the cent. Energy lines per register (or ``dynamic``: Σ quarter energy
× (market price + markup)); ``export`` (injection) as a negative amount; ``fixed`` prorated by the plan's
local days in the month; ``capacity`` = billable kW of the month's ledger × price per kW-year ÷ 12, priced
by the plan in force at the end of the month (the one that bills it); ``vat`` per plan on its rounded
lines. The running month is ``partial``; its projection scales the energy and export lines by the month's
length ÷ the time up to the newest reading and adds the full fixed and capacity lines, VAT included.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Final
from zoneinfo import ZoneInfo

from p1_contracts.models import Bill, BillLine
from p1_query.costs import PlanPart
from p1_query.costs_sql import Direction
from p1_query.plans import Plan

CENT: Final = Decimal("0.01")
_ENERGY_KINDS: Final = ("energy_import_t1", "energy_import_t2", "dynamic", "export")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def dec(value: float) -> Decimal:
    """A float energy or sum as the decimal the answers show (6 decimals, as series do)."""
    return Decimal(repr(round(value, 6)))


@dataclass(slots=True)
class _Lines:
    lines: list[tuple[BillLine, Plan]] = field(default_factory=list)  # (line, the plan pricing it)
    complete: bool = True

    def add(
        self,
        kind: str,
        plan: Plan,
        qty: Decimal,
        unit: str,
        price: Decimal | None,
        amount: Decimal,
        unpriced: Decimal | None = None,
    ) -> None:
        line = BillLine(
            kind=kind,  # type: ignore[arg-type]
            plan=plan.name,
            quantity=float(qty),
            unit=unit,  # type: ignore[arg-type]
            unit_price=None if price is None else float(price),
            amount_eur=float(cents(amount)),
            unpriced_kwh=None if unpriced is None else float(unpriced),
        )
        self.lines.append((line, plan))


def _registers(out: _Lines, part: PlanPart) -> None:
    plan = part.segment.plan
    if plan.import_dynamic:
        sums = (part.dynamic[0] if part.dynamic else None) or Direction(0.0, 0.0, 0.0)
        amount = dec(sums.market) + plan.import_markup * dec(sums.priced)
        unpriced = dec(sums.unpriced)
        out.complete = out.complete and unpriced == 0
        out.add("dynamic", plan, dec(sums.priced), "kWh", None, amount, unpriced)
        return
    assert plan.import_t1 is not None
    assert plan.import_t2 is not None
    e = part.imports
    if e.t1 is not None and e.t2 is not None:
        for kind, kwh, price in (
            ("energy_import_t1", e.t1, plan.import_t1),
            ("energy_import_t2", e.t2, plan.import_t2),
        ):
            out.add(kind, plan, dec(kwh), "kWh", price, dec(kwh) * price)
    elif e.total is not None and plan.import_t1 == plan.import_t2:  # a meter without registers
        out.add("energy_import_t1", plan, dec(e.total), "kWh", plan.import_t1, dec(e.total) * plan.import_t1)
    elif e.total:
        out.complete = False  # two register prices and no registers: not priced, never guessed


def _export(out: _Lines, part: PlanPart) -> None:
    plan = part.segment.plan
    if plan.export_dynamic:
        sums = (part.dynamic[1] if part.dynamic else None) or Direction(0.0, 0.0, 0.0)
        if sums.priced or sums.unpriced:
            amount = dec(sums.market) + plan.export_markup * dec(sums.priced)
            unpriced = dec(sums.unpriced)
            out.complete = out.complete and unpriced == 0
            out.add("export", plan, dec(sums.priced), "kWh", None, -amount, unpriced)
        return
    assert plan.export_t1 is not None
    assert plan.export_t2 is not None
    e = part.exports
    if e.t1 is not None and e.t2 is not None:
        kwh, amount = dec(e.t1) + dec(e.t2), dec(e.t1) * plan.export_t1 + dec(e.t2) * plan.export_t2
    elif e.total is not None and plan.export_t1 == plan.export_t2:
        kwh, amount = dec(e.total), dec(e.total) * plan.export_t1
    else:
        out.complete = out.complete and not e.total
        return
    if kwh:
        price = plan.export_t1 if plan.export_t1 == plan.export_t2 else None
        out.add("export", plan, kwh, "kWh", price, -amount)


def _days(start: float, end: float, zone: ZoneInfo) -> int:
    """Local days in [start, end), both local midnights of ``zone`` (a month's or a plan's start)."""
    a = datetime.fromtimestamp(start, UTC).astimezone(zone).date()
    b = datetime.fromtimestamp(end, UTC).astimezone(zone).date()
    return (b - a).days


@dataclass(frozen=True, slots=True)
class Month:
    """The asked month: its label, zone, UTC bounds (seconds), newest reading (seconds) and now."""

    device_id: str
    label: str
    zone: ZoneInfo
    tz_name: str
    start: float
    end: float
    newest: float | None
    now: float


def bill(month: Month, parts: Sequence[PlanPart], billable_kw: float, ledger_price: float) -> Bill:
    """The month's bill from each plan's part (in time order), the month's billable kW and the ledger's
    capacity price (for a plan that names none)."""
    out = _Lines()
    month_days = _days(month.start, month.end, month.zone)
    covered = 0.0
    for part in parts:
        plan, segment = part.segment.plan, part.segment
        covered += segment.end - segment.start
        _registers(out, part)
        _export(out, part)
        days = _days(segment.start, segment.end, month.zone)
        share = Decimal(days) / Decimal(month_days)
        if plan.fixed_eur_per_month:
            out.add(
                "fixed",
                plan,
                share.quantize(Decimal("0.000001")),
                "month",
                plan.fixed_eur_per_month,
                plan.fixed_eur_per_month * share,
            )
    if parts:
        last = parts[-1].segment.plan
        year_price = last.capacity_eur_per_kw_year
        if year_price is None:
            year_price = Decimal(repr(ledger_price))
        kw = Decimal(repr(billable_kw))
        out.add("capacity", last, kw, "kW", year_price / 12, kw * year_price / 12)
    out.complete = out.complete and covered >= month.end - month.start
    return _totals(month, parts, out)


def _totals(month: Month, parts: Sequence[PlanPart], out: _Lines) -> Bill:
    plans = [part.segment.plan for part in parts]
    names = list(dict.fromkeys(plan.name for plan in plans))
    lines = [line for line, _ in out.lines]
    for plan in dict.fromkeys(mine for _, mine in out.lines):
        if plan.vat:
            base = sum(
                (Decimal(repr(line.amount_eur)) for line, mine in out.lines if mine is plan), Decimal(0)
            )
            lines.append(
                BillLine(
                    kind="vat",
                    plan=plan.name,
                    quantity=float(base),
                    unit="EUR",
                    unit_price=float(plan.vat),
                    amount_eur=float(cents(base * plan.vat)),
                )
            )
    subtotal = sum((Decimal(repr(line.amount_eur)) for line in lines if line.kind != "vat"), Decimal(0))
    vat = sum((Decimal(repr(line.amount_eur)) for line in lines if line.kind == "vat"), Decimal(0))
    partial = month.now < month.end
    return Bill(
        device_id=month.device_id,
        month=month.label,
        tz=month.tz_name,
        currency=plans[-1].currency if plans else "EUR",
        plans=names,
        lines=lines,
        subtotal_eur=float(subtotal),
        vat_eur=float(vat),
        total_eur=float(subtotal + vat),
        partial=partial,
        projected_total_eur=_projected(month, out) if partial else None,
        complete=out.complete,
    )


def _projected(month: Month, out: _Lines) -> float | None:
    """Energy and export lines × (month length ÷ time up to the newest reading), fixed and capacity as
    they are (a running month's plans already cover it to its end), VAT at each line's plan's rate."""
    if month.newest is None or month.newest <= month.start:
        return None
    scale = Decimal(repr(month.end - month.start)) / Decimal(repr(min(month.newest, month.end) - month.start))
    total = Decimal(0)
    for line, plan in out.lines:
        amount = Decimal(repr(line.amount_eur))
        if line.kind in _ENERGY_KINDS:
            amount *= scale
        total += amount * (1 + plan.vat)
    return float(cents(total))
