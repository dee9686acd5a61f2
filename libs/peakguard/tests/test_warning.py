"""The warning rule (p1_peakguard.warning) on loads a second at a time, each case computed by hand.

``quarter(power)`` integrates a power profile (W by second of the quarter, constant during each second)
into readings every second and feeds the running quarter of each to the rule, as notify does."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from p1_peakguard.quarter import QuarterNow, Reading, running_quarter
from p1_peakguard.warning import HOLD_S, Guard, crossing_s, step

Q0 = datetime(2026, 11, 12, 17, 0, tzinfo=UTC)
Power = Callable[[int], float]  # W during second s of the quarter (0 … 899)


def states(power: Power, month_peak_kw: float | None, start: datetime = Q0) -> Iterator[QuarterNow]:
    counter = 100.0
    for s in range(900):
        yield running_quarter(
            start_kwh=100.0,
            newest=Reading(start + timedelta(seconds=s), counter, power(s)),
            month_peak_kw=month_peak_kw,
            cap_kw=None,
            price_eur_per_kw_year=50.0,
        )
        counter += max(power(s), 0.0) / 3.6e6


def warned_at(power: Power, month_peak_kw: float | None, guard: Guard | None = None) -> list[float]:
    """The elapsed seconds of the states the rule warned on."""
    memory, found = guard or Guard(), []
    for state in states(power, month_peak_kw):
        memory, warn = step(memory, state)
        if warn:
            found.append(state.elapsed_s)
    return found


def load(base_w: float, extra_w: float, on_s: int, off_s: int = 10_000) -> Power:
    return lambda s: base_w + (extra_w if on_s <= s < off_s else 0.0)


def test_a_kettle_on_a_low_base_is_not_warned() -> None:
    """400 W base, a 2.5 kW kettle from minute 1 to 3, no peak yet (threshold 2.5 kW). At minute 1 the
    quarter projects over if the kettle boiled on: (0.4 × 60 + 2.9 × 840) / 3600 × 4 = 2.733 kW. A minute
    later it would still need (0.625 − 0.055) kWh / 2.9 kW = 708 s to cross: more than LEAD_S, so no
    warning; it stops at minute 3 and the quarter ends at (0.4 × 900 + 2.5 × 120) / 3600 × 4 = 0.733 kW."""
    power = load(400, 2500, 60, 180)
    assert max(s.projected_kw for s in states(power, None)) >= 2.733
    assert warned_at(power, None) == []
    assert list(states(power, None))[-1].projected_kw == pytest.approx(0.733, abs=0.002)


def test_an_oven_five_minutes_before_the_end_is_warned_while_it_runs() -> None:
    """2 kW base, the month's peak 3.0 kW; a 4 kW oven from 17:10 for 6 minutes. At 17:10 the import so
    far is 2 × 600 / 3600 = 0.3333 kWh and the projection (0.3333 + 6 × 300 / 3600) × 4 = 3.333 kW > 3.0;
    it crosses 3.0 kW after (0.75 − 0.3333) / 6 × 3600 = 250 s. After HOLD_S of it: one warning, at
    elapsed 660 s, 4 minutes before the end, with the oven on."""
    assert warned_at(load(2000, 4000, 600, 960), 3.0) == [600 + HOLD_S]


def test_a_load_two_minutes_before_the_end_is_warned_a_minute_before() -> None:
    """2 kW base, no peak yet (2.5 kW): 6 kW more from 17:13 projects (0.4333 + 8 × 120 / 3600) × 4 =
    2.8 kW; held 60 s it is warned at elapsed 840 s, 60 s before the end (the latest the measurement
    counts as in time). A load starting 50 s before the end is never warned: too late to act."""
    assert warned_at(load(2000, 6000, 780), None) == [840.0]
    assert warned_at(load(2000, 6000, 850), None) == []


@pytest.mark.parametrize(
    ("extra_w", "start_s"), [(3000, 0), (3000, 300), (3000, 540), (7400, 720), (11000, 720), (11000, 0)]
)
def test_a_load_three_minutes_before_the_end_is_warned_while_it_runs(extra_w: int, start_s: int) -> None:
    """On a 1.5 kW base, loads that start ≥ 180 s before the end and take the quarter over 2.5 kW are
    warned at least 120 s before the end, and before the quarter has crossed."""
    power = load(1500, extra_w, start_s)
    ends = list(states(power, 2.5))[-1]
    assert ends.projected_kw > 2.5, "the case must end over"
    found = warned_at(power, 2.5)
    crossed = next((s.elapsed_s for s in states(power, 2.5) if s.kw_so_far > 2.5), 900.0)
    assert len(found) == 1
    assert found[0] <= min(900 - 120, crossed)


def test_one_warning_per_quarter_and_a_new_quarter_warns_again() -> None:
    """A load over the threshold that goes off and on again warns once; the memory of the next
    quarter starts afresh."""
    power: Power = lambda s: 9000.0 if (s // 120) % 2 == 0 else 0.0  # noqa: E731
    assert len(warned_at(power, None)) == 1
    memory = Guard()
    warnings = 0
    for start in (Q0, Q0 + timedelta(minutes=15)):
        for state in states(power, None, start):
            memory, warn = step(memory, state)
            warnings += warn
    assert warnings == 2


def test_the_crossing() -> None:
    """0.5 kWh imported, threshold 3.0 kW (0.75 kWh), 3 kW now: (0.75 − 0.5) / 3 h = 300 s; exporting:
    never; already over: now."""

    def now(energy: float, power_w: float) -> QuarterNow:
        return running_quarter(
            start_kwh=0.0,
            newest=Reading(Q0 + timedelta(minutes=10), energy, power_w),
            month_peak_kw=3.0,
            cap_kw=None,
            price_eur_per_kw_year=50.0,
        )

    assert crossing_s(now(0.5, 3000.0)) == pytest.approx(300.0)
    assert crossing_s(now(0.5, -100.0)) == float("inf")
    assert crossing_s(now(0.8, 100.0)) == 0.0
