"""`p1-ingest tariffs show [DEVICE]`: the stored plans as a readable table per device — which one is in
force now and since when, and the earlier and later ones — by p1_tariffs' one rule."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from p1_contracts.timerange import EARLIEST, LATEST
from p1_tariffs.rules import EVERY_DEVICE, TariffPlan, in_force, spans

HEADER: Final = (
    "",
    "plan",
    "named",
    "from",
    "until",
    "import/kWh",
    "export/kWh",
    "fixed/month",
    "capacity/kW-y",
    "VAT",
)


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _price(t1: Decimal | None, t2: Decimal | None, dynamic: bool, markup: Decimal) -> str:
    if dynamic:
        return f"dynamic{'' if markup == 0 else f' {markup:+f}'}"
    assert t1 is not None
    assert t2 is not None
    return _num(t1) if t1 == t2 else f"t1 {_num(t1)} / t2 {_num(t2)}"


def _capacity(plan: TariffPlan) -> str:
    if plan.capacity_eur_per_kw_year is not None:
        return _num(plan.capacity_eur_per_kw_year)
    return plan.grid_operator or "the ledger's"


def _row(mark: str, plan: TariffPlan, until: str) -> tuple[str, ...]:
    return (
        mark,
        plan.name,
        plan.device_id,
        f"{plan.valid_from} {plan.tz}",
        until,
        f"{_price(plan.import_t1, plan.import_t2, plan.import_dynamic, plan.import_markup)} {plan.currency}",
        _price(plan.export_t1, plan.export_t2, plan.export_dynamic, plan.export_markup),
        _num(plan.fixed_eur_per_month),
        _capacity(plan),
        f"{_num(plan.vat * 100)} %",
    )


def device_table(plans: Sequence[TariffPlan], device_id: str, now: datetime) -> list[str]:
    """The lines for one device ('*': a device no plan names)."""
    timeline = [s for s in spans(plans, device_id, EARLIEST, LATEST) if s.plan is not None]
    current = in_force(plans, device_id, now)
    who = "every device no plan names" if device_id == EVERY_DEVICE else f"device {device_id}"
    head = (
        f"{who}: no plan in force now"
        if current is None
        else f'{who}: plan "{current.name}" in force now, since {current.valid_from} 00:00 {current.tz}'
    )
    rows = []
    for plan in sorted({s.plan for s in timeline if s.plan is not None}, key=lambda p: p.starts_at):
        mine = [s for s in timeline if s.plan is plan]
        end = mine[-1].end
        until = "-" if end >= LATEST else end.astimezone(ZoneInfo(plan.tz)).isoformat(timespec="minutes")
        mark = "now" if plan is current else ("past" if end <= now else "later")
        rows.append(_row(mark, plan, until))
    return [head, *_table([HEADER, *rows])] if rows else [head]


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def show(plans: Sequence[TariffPlan], device_id: str | None, now: datetime) -> list[str]:
    """Every device named by a plan (then '*'), or only ``device_id``."""
    if device_id is not None:
        return device_table(plans, device_id, now)
    named = sorted({p.device_id for p in plans} - {EVERY_DEVICE})
    devices = named + ([EVERY_DEVICE] if any(p.device_id == EVERY_DEVICE for p in plans) else [])
    lines: list[str] = []
    for device in devices:
        lines += [*([""] if lines else []), *device_table(plans, device, now)]
    return lines or ["no tariff plans stored (p1-ingest tariffs load FILE)"]
