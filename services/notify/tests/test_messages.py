"""The notification texts, written out by hand (README "Notifications")."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from p1_notify import messages

BRUSSELS = ZoneInfo("Europe/Brussels")
END = datetime(2026, 11, 12, 13, 45, tzinfo=UTC)  # 14:45 in Brussels (UTC+1)


def test_a_warning_of_a_new_peak_says_what_it_would_cost() -> None:
    title, body = messages.warning("demo", 4.3, 3.1, 5.2, END, BRUSSELS, 3.1)
    assert title == "Peak warning (demo)"
    assert body == (
        "demo: heading for 4.3 kW this quarter (peak so far 3.1 kW): about €5.2 more over the next 12 months"
        " — switch something off before 14:45"
    )


def test_a_warning_over_ones_own_cap_below_the_months_peak_says_there_is_no_extra_cost() -> None:
    # The demo's case: cap 3 kW, the month's peak already 10.2 kW, heading for 6.8 kW: €0 more.
    _, body = messages.warning("demo", 6.8, 10.2, 0.0, END, BRUSSELS, 3.0)
    assert body == (
        "demo: heading for 6.8 kW this quarter, over your 3.0 kW cap (peak so far 10.2 kW, so no extra cost)"
        " — switch something off before 14:45"
    )


def test_results() -> None:
    assert messages.result("demo", 4.3, 3.1, 5.2)[1] == (
        "demo: new monthly peak 4.3 kW (was 3.1), about €5.2 more over the next 12 months"
    )
    assert messages.result("demo", 3.0, 3.1, 0.0)[1] == "demo: stayed under: 3.0 kW"
