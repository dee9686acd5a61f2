"""The rolling 12-month average of the running month, by hand (the ledger's rule: the mean of the counted
peaks of the months with data, each at least 2.5 kW)."""

from datetime import UTC, datetime

from p1_peakguard.quarter import Reading, rolling_avg_kw, running_quarter


def test_the_rolling_average() -> None:
    """Past months 2.5 and 5.0, this month's peak so far 4.0: (2.5 + 5.0 + 4.0) / 3 = 3.833. This month
    at 1.2 kW counts 2.5; without a peak yet it is not a month with data; nothing at all: None."""
    assert rolling_avg_kw([2.5, 5.0], 4.0) == 3.833
    assert rolling_avg_kw([2.5, 5.0], 1.2) == 3.333
    assert rolling_avg_kw([2.5, 5.0], None) == 3.75
    assert rolling_avg_kw([], None) is None
    now = running_quarter(
        start_kwh=0.0,
        newest=Reading(datetime(2026, 2, 12, 10, 30, tzinfo=UTC), 0.5, 2000.0),
        month_peak_kw=4.0,
        cap_kw=None,
        price_eur_per_kw_year=50.0,
        past_counted_kw=[2.5, 5.0],
    )
    assert now.rolling_12m_avg_kw == 3.833
