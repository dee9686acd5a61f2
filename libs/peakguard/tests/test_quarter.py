"""The running quarter, computed by hand: energy from the interpolated counter, kw_so_far, the projection,
the threshold (month peak, floor, cap), the headroom and the extra cost of a new peak."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from p1_peakguard.months import month_of
from p1_peakguard.quarter import (
    CounterPoint,
    Reading,
    counted_peak_kw,
    counter_at,
    peak_rise_eur,
    quarter_of,
    running_quarter,
)

PRICE = 53.25


def at(hour: int, minute: int, second: int = 0, day: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def test_the_readme_example() -> None:
    """17:10:00Z, 10 minutes into the 17:00 quarter: 0.6 kWh imported so far (×4 = 2.4 kW), 4800 W now.
    Projected: (0.6 + 4.8 kW × 5/60 h) × 4 = (0.6 + 0.4) × 4 = 4.0 kW. The month's peak 3.1 kW:
    headroom 3.1 − 4.0 = −0.9; extra (4.0 − 3.1) × 53.25 / 12 = 3.99375 → 3.99 €."""
    now = running_quarter(
        start_kwh=1000.0,
        newest=Reading(at(17, 10), 1000.6, 4800.0),
        month_peak_kw=3.1,
        cap_kw=None,
        price_eur_per_kw_year=PRICE,
    )
    assert (now.quarter_start, now.quarter_end, now.as_of) == (at(17, 0), at(17, 15), at(17, 10))
    assert (now.elapsed_s, now.energy_kwh, now.kw_so_far, now.power_w) == (600.0, 0.6, 2.4, 4800.0)
    assert (now.projected_kw, now.month_peak_kw, now.threshold_kw) == (4.0, 3.1, 3.1)
    assert (now.headroom_kw, now.extra_cost_eur) == (-0.9, 3.99)


def test_the_floor_the_cap_and_export() -> None:
    """No completed quarter yet: the threshold is the 2.5 kW floor, and the extra cost counts from it:
    (4.0 − 2.5) × 53.25 / 12 = 6.65625 → 6.66. A cap of 3.5 kW is the threshold (headroom −0.5), the
    extra cost still from the counted peak. Exporting (−2000 W): nothing more is projected."""
    newest = Reading(at(17, 10), 1000.6, 4800.0)
    floor = running_quarter(
        start_kwh=1000.0, newest=newest, month_peak_kw=None, cap_kw=None, price_eur_per_kw_year=PRICE
    )
    assert (floor.month_peak_kw, floor.threshold_kw, floor.headroom_kw, floor.extra_cost_eur) == (
        None,
        2.5,
        -1.5,
        6.66,
    )
    capped = running_quarter(
        start_kwh=1000.0, newest=newest, month_peak_kw=2.0, cap_kw=3.5, price_eur_per_kw_year=PRICE
    )
    assert (capped.threshold_kw, capped.headroom_kw, capped.extra_cost_eur) == (3.5, -0.5, 6.66)
    exporting = running_quarter(
        start_kwh=1000.0,
        newest=Reading(at(17, 10), 1000.6, -2000.0),
        month_peak_kw=3.1,
        cap_kw=None,
        price_eur_per_kw_year=PRICE,
    )
    assert (exporting.projected_kw, exporting.headroom_kw, exporting.extra_cost_eur) == (2.4, 0.7, 0.0)


def test_a_reading_on_the_boundary_starts_a_quarter() -> None:
    """A reading at 17:15:00 is the 17:15 quarter's first: elapsed 0, nothing imported yet, the present
    load projected over the whole quarter: 3 kW → 3.0 kW."""
    now = running_quarter(
        start_kwh=5.0,
        newest=Reading(at(17, 15), 5.0, 3000.0),
        month_peak_kw=4.0,
        cap_kw=None,
        price_eur_per_kw_year=PRICE,
    )
    assert (now.quarter_start, now.elapsed_s, now.energy_kwh, now.projected_kw) == (at(17, 15), 0.0, 0.0, 3.0)
    assert (now.headroom_kw, now.extra_cost_eur) == (1.0, 0.0)


def test_the_counter_at_the_quarters_start() -> None:
    """Readings at 16:59:55 (100.000 kWh) and 17:00:05 (100.010): at 17:00:00 half way, 100.005. Of two
    epochs (a new meter) or without a reading before, the counter is held at the first one after."""
    before, after = CounterPoint(at(16, 59, 55), 100.0, 1), CounterPoint(at(17, 0, 5), 100.01, 1)
    assert counter_at(at(17, 0), before, after) == pytest.approx(100.005, abs=1e-12)
    assert counter_at(at(17, 0), CounterPoint(at(16, 59, 55), 100.0, 0), after) == 100.01
    assert counter_at(at(17, 0), None, after) == 100.01
    assert counter_at(at(17, 0), before, CounterPoint(at(17, 0), 100.02, 1)) == 100.02
    assert counter_at(at(17, 0), before, None) is None


def test_the_months_counted_peak() -> None:
    """Ours when they cover the month up to the running quarter or the meter said nothing; else the
    meter's (the ledger's rule, p1_query.capacity)."""
    assert counted_peak_kw(3.0, 100, 100, 4.2) == 3.0  # ours cover the month
    assert counted_peak_kw(3.0, 40, 100, 4.2) == 4.2  # ours miss quarters: the meter's
    assert counted_peak_kw(3.0, 40, 100, None) == 3.0  # the meter said nothing
    assert counted_peak_kw(None, 0, 100, 4.2) == 4.2
    assert counted_peak_kw(None, 0, 0, None) is None


def test_the_extra_cost_of_a_peak() -> None:
    """A new peak of 4.3 kW over 3.1: 1.2 × 53.25 / 12 = 5.325 → 5.33 (half-up on the decimal product,
    where binary floats give 5.324999…); under the counted peak nothing; over the floor only from 2.5."""
    assert peak_rise_eur(4.3, 3.1, 53.25) == 5.33
    assert peak_rise_eur(3.0, 3.1, 53.25) == 0.0
    assert peak_rise_eur(3.0, 1.2, 48.0) == 2.0  # (3.0 − 2.5) × 48 / 12


def test_quarters_and_local_months() -> None:
    """1 December in Brussels starts at 30 November 23:00Z: the quarter 23:00Z is December's."""
    assert quarter_of(at(23, 14, 59, day=30)) == at(23, 0, day=30)
    month = month_of(at(23, 0, day=30), ZoneInfo("Europe/Brussels"))
    assert (month.label, month.start, month.end) == (
        "2026-12",
        at(23, 0, day=30),
        datetime(2026, 12, 31, 23, tzinfo=UTC),
    )
