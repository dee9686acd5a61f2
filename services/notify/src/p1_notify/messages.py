"""The texts of the two notifications (README "Notifications")."""

from datetime import datetime
from zoneinfo import ZoneInfo


def _kw(value: float) -> str:
    return f"{value:.1f} kW"


def _eur(value: float) -> str:
    return f"€{value:.1f}"


def warning(
    device_id: str,
    projected_kw: float,
    month_peak_kw: float | None,
    extra_cost_eur: float,
    quarter_end: datetime,
    tz: ZoneInfo,
    threshold_kw: float | None = None,
) -> tuple[str, str]:
    """(title, body): "heading for 4.3 kW this quarter (peak so far 3.1 kW): about €5.2 more over the
    next 12 months — switch something off before 14:45"; over one's own cap without a new monthly peak
    (nothing to pay more): "heading for 6.8 kW this quarter, over your 3.0 kW cap (peak so far 10.2 kW, so
    no extra cost) — …"."""
    peak = f"peak so far {_kw(month_peak_kw)}" if month_peak_kw is not None else "no peak yet this month"
    until = quarter_end.astimezone(tz).strftime("%H:%M")
    if round(extra_cost_eur, 1) > 0 or threshold_kw is None:
        why = f" ({peak}): about {_eur(extra_cost_eur)} more over the next 12 months"
    else:
        why = f", over your {_kw(threshold_kw)} cap ({peak}, so no extra cost)"
    act = f" — switch something off before {until}"
    body = f"{device_id}: heading for {_kw(projected_kw)} this quarter{why}{act}"
    return f"Peak warning ({device_id})", body


def result(device_id: str, kw: float, month_peak_kw: float | None, extra_cost_eur: float) -> tuple[str, str]:
    """(title, body): "new monthly peak 4.3 kW (was 3.1), about €5.2 more over the next 12 months" or
    "stayed under: 3.0 kW"."""
    if month_peak_kw is None or kw > month_peak_kw:
        was = f"{month_peak_kw:.1f}" if month_peak_kw is not None else "none"
        body = (
            f"{device_id}: new monthly peak {_kw(kw)} (was {was}), about {_eur(extra_cost_eur)} more over "
            "the next 12 months"
        )
    else:
        body = f"{device_id}: stayed under: {_kw(kw)}"
    return f"Peak result ({device_id})", body
