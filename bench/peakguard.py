"""Peak guard measurement (issue 16): the warning rule (``p1_peakguard.warning``) over a simulated month.

For each of the simulator's household profiles (``p1_edge.simulator.profiles``; ``idle`` draws nothing),
30 days of readings a second (January 2026, Europe/Brussels, deterministic: the profiles are pure
functions of local time) are integrated into an import counter shown as the meter shows it (whole Wh,
rounded down), and every reading's running quarter (``running_quarter``, exactly what notify and
``capacity/now`` compute) goes through the rule, the month's peak being the highest completed quarter so
far (threshold: max(peak, 2.5 kW), no cap). Counted per quarter:

- **over**: the quarter ended above its threshold (a new monthly peak);
- **missed**: over, and no warning at least 60 s before its end (too late or none);
- **false**: warned, and ended at or under its threshold.

Demands are counted to 3 decimals of kW, as the ledger counts them. For the missed quarters it prints the
largest rise over the threshold and what they cost in all (``peak_rise_eur``, 53.25 €/kW/year).

The same states also go through a naive rule (warn at the first reading that projects over), the
baseline of the same run, so the figures read as the rule's gain, and through the rule with a lead of
300 s instead of 180 s (``lead300``), the alternative it was chosen over. Nothing is timed: this measures what
the rule does, not how fast.

    .venv/bin/python bench/peakguard.py [--days 30] [--profiles home,ev,…]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from p1_edge.simulator.profiles import PROFILES, Profile
from p1_peakguard.quarter import FLOOR_KW, QuarterNow, Reading, peak_rise_eur, running_quarter
from p1_peakguard.warning import Guard, projects_over, step

TZ = ZoneInfo("Europe/Brussels")
START = datetime(2026, 1, 1, tzinfo=TZ).astimezone(UTC)
IN_TIME_S = 60.0  # a warning counts as in time when it comes at least this long before the quarter's end
PRICE = 53.25


@dataclass
class Tally:
    quarters: int = 0
    over: int = 0
    warned: int = 0
    missed: int = 0
    late: int = 0  # missed, but warned in the last IN_TIME_S
    false: int = 0
    missed_kw: float = 0.0  # the largest rise over the threshold of a missed quarter
    missed_eur: float = 0.0  # what the missed quarters' rises cost, in all (peak_rise_eur)

    def row(self) -> str:
        return (
            f"{self.quarters:>8} {self.over:>5} {self.warned:>7} {self.missed:>7} ({self.late} late)"
            f" {self.false:>6}   missed: ≤ {self.missed_kw:.3f} kW, {self.missed_eur:.2f} € in all"
        )


Rule = Callable[[Guard, QuarterNow], tuple[Guard, bool]]


def naive(guard: Guard, state: QuarterNow) -> tuple[Guard, bool]:
    """The baseline: the first reading of a quarter that projects over."""
    if guard.quarter_start != state.quarter_start:
        guard = Guard(quarter_start=state.quarter_start)
    warn = projects_over(state) and not guard.warned
    return Guard(guard.quarter_start, None, guard.warned or warn), warn


def close(tally: Tally, final_kw: float, threshold: float, warned_at: float | None) -> None:
    tally.quarters += 1
    over = final_kw > threshold
    tally.over += over
    tally.warned += warned_at is not None
    if over and (warned_at is None or warned_at > 900 - IN_TIME_S):
        tally.missed += 1
        tally.late += warned_at is not None
        tally.missed_kw = max(tally.missed_kw, round(final_kw - threshold, 3))
        tally.missed_eur += peak_rise_eur(final_kw, threshold, PRICE)
    if not over and warned_at is not None:
        tally.false += 1


def simulate(profile: Profile, days: int, rules: dict[str, Rule]) -> dict[str, Tally]:
    tallies = {name: Tally() for name in rules}
    guards = {name: Guard() for name in rules}
    warned_at: dict[str, float | None] = dict.fromkeys(rules)
    joules = 0
    month_peak: float | None = None
    quarter_start_kwh = 0.0
    for s in range(days * 86400):
        ts = START + timedelta(seconds=s)
        if s % 900 == 0:
            if s:
                # kW to 3 decimals, as the capacity rules count them (no new peak from float noise)
                final_kw = round((joules // 3600 / 1000 - quarter_start_kwh) * 4, 3)
                threshold = max(month_peak or 0.0, FLOOR_KW)
                for name in rules:
                    close(tallies[name], final_kw, threshold, warned_at[name])
                month_peak = max(month_peak or 0.0, final_kw)
            quarter_start_kwh = joules // 3600 / 1000
            warned_at = dict.fromkeys(rules)
        power = profile.load(ts.astimezone(TZ)).total
        state = running_quarter(
            start_kwh=quarter_start_kwh,
            newest=Reading(ts, joules // 3600 / 1000, float(power)),
            month_peak_kw=month_peak,
            cap_kw=None,
            price_eur_per_kw_year=PRICE,
        )
        for name, rule in rules.items():
            guards[name], warn = rule(guards[name], state)
            if warn:
                warned_at[name] = state.elapsed_s
        joules += max(power, 0)
    return tallies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--profiles", default=",".join(p for p in PROFILES if p != "idle"))
    args = parser.parse_args(argv)
    rules: dict[str, Rule] = {
        "rule": step,
        "lead300": lambda guard, state: step(guard, state, lead_s=300.0),
        "naive": naive,
    }
    totals = {name: Tally() for name in rules}
    print(f"{args.days} days from {START.astimezone(TZ):%Y-%m-%d %H:%M} Europe/Brussels, a reading a second")
    head = f"{'quarters':>8} {'over':>5} {'warned':>7} {'missed':>7}       {'false':>6}"
    print(f"{'profile':<14}{'rule':<7}{head}")
    for name in args.profiles.split(","):
        for rule, tally in simulate(PROFILES[name], args.days, rules).items():
            print(f"{name:<14}{rule:<7}{tally.row()}", flush=True)
            total = totals[rule]
            for field in ("quarters", "over", "warned", "missed", "late", "false", "missed_eur"):
                setattr(total, field, getattr(total, field) + getattr(tally, field))
            total.missed_kw = max(total.missed_kw, tally.missed_kw)
    for rule, total in totals.items():
        print(f"{'all':<14}{rule:<7}{total.row()}")
    ours, base = totals["rule"], totals["naive"]
    print(
        f"false warnings: {ours.false} vs {base.false} naive (ratio {ours.false / max(base.false, 1):.2f}); "
        f"missed: {ours.missed} vs {base.missed} naive, of {ours.over} quarters over"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
