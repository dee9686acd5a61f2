"""Quarter-hour demand as a Belgian meter registers it: the running quarter, each month's peak over
*completed* quarters only, and the history of the last 13 months (``0-0:98.1.0``).

Rules (the same as the query service's capacity ledger): quarters are fixed clock quarters (every UTC
offset in use is a whole number of quarters, so these are UTC multiples of 900 s); a quarter's demand is
its offtake energy / 900 s, injection never counts; a quarter belongs to the local month in which it
starts; of equal quarters the earlier is the peak. The meter stamps a peak with the end of its quarter.

The simulated meter was installed long before the simulation started (unless told otherwise): the months
before the first simulated quarter are the profile's own load, sampled in the middle of every five
minutes (a quarter is the mean of its three samples). That is an estimate — the simulation integrates
every second — but a deterministic one, and it makes the meter's history complete from the first
telegram, as a real meter's is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from p1_edge.simulator.profiles import Profile

QUARTER_S = 900
HISTORY_MONTHS = 13  # 0-0:98.1.0 holds this many completed months
# The estimate samples the profile in the middle of each five-minute slot of a quarter; `make demo`'s
# backfill (history.py) integrates the past in the same slots, so its peaks are the meter's own.
ESTIMATE_SLOT_S = 300
_SAMPLES = tuple(range(ESTIMATE_SLOT_S // 2, QUARTER_S, ESTIMATE_SLOT_S))  # 150, 450, 750 s into it

Month = tuple[int, int]


@dataclass(frozen=True)
class QuarterPeak:
    w: int
    end: int  # epoch second at which the quarter ended


def month_of(second: int, tz: ZoneInfo) -> Month:
    local = datetime.fromtimestamp(second, tz)
    return local.year, local.month


def month_bounds(month: Month, tz: ZoneInfo) -> tuple[int, int]:
    """[first second, first second of the next month) of a local calendar month."""
    year, number = month
    following = (year + number // 12, number % 12 + 1)
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(following[0], following[1], 1, tzinfo=tz)
    return int(start.timestamp()), int(end.timestamp())


def months_before(month: Month, count: int) -> list[Month]:
    """The ``count`` months before ``month``, oldest first."""
    index = month[0] * 12 + month[1] - 1
    return [((i // 12), i % 12 + 1) for i in range(index - count, index)]


def higher(a: QuarterPeak | None, b: QuarterPeak | None) -> QuarterPeak | None:
    """The higher of two peaks; of equal ones the earlier."""
    if a is None or b is None:
        return a or b
    if a.w != b.w:
        return a if a.w > b.w else b
    return a if a.end <= b.end else b


@lru_cache(maxsize=512)
def estimated_peak(profile: Profile, tz: ZoneInfo, start: int, end: int) -> QuarterPeak | None:
    """The highest quarter wholly inside [start, end) as ``profile`` draws it (see the module's doc)."""
    first = -(-start // QUARTER_S) * QUARTER_S
    best: QuarterPeak | None = None
    for quarter in range(first, end - QUARTER_S + 1, QUARTER_S):
        samples = (profile.load(datetime.fromtimestamp(quarter + s, tz)).total for s in _SAMPLES)
        demand = round(sum(max(w, 0) for w in samples) / len(_SAMPLES))
        best = higher(best, QuarterPeak(demand, quarter + QUARTER_S))
    return best


class PeakRegister:
    """Completed quarters per month; the running quarter's energy until the quarter ends."""

    def __init__(self, profile: Profile, tz: ZoneInfo, first_quarter: int, installed: int | None) -> None:
        self.profile = profile
        self.tz = tz
        self.quarter_start = first_quarter
        self.quarter_j = 0
        self._measured: dict[Month, QuarterPeak] = {}
        self._estimated_until = first_quarter  # the months before this come from the estimate
        self._installed = installed

    def add(self, import_j: int) -> None:
        self.quarter_j += import_j

    def close_quarter(self, end: int) -> None:
        """The quarter ending at ``end`` is complete: it counts from now on."""
        start = end - QUARTER_S
        if start == self.quarter_start:
            month = month_of(start, self.tz)
            demand = QuarterPeak(round(self.quarter_j / QUARTER_S), end)
            self._measured[month] = higher(self._measured.get(month), demand) or demand
        self.quarter_start, self.quarter_j = end, 0
        self._forget_old(month_of(end, self.tz))

    def restart(self, second: int, installed: int | None) -> None:
        """A new meter (or one back from a long outage) starts measuring at ``second``."""
        self.quarter_start = second - second % QUARTER_S
        self.quarter_j = 0
        if installed is not None:
            self._installed = installed
            self._measured.clear()
            self._estimated_until = installed

    def average_w(self, now: int) -> int:
        """``1-0:1.4.0``: the running quarter's offtake so far over the time elapsed in it."""
        elapsed = now - self.quarter_start
        return round(self.quarter_j / elapsed) if elapsed > 0 else 0

    def month_peak(self, month: Month) -> QuarterPeak | None:
        start, end = month_bounds(month, self.tz)
        if self._installed is not None:
            start = max(start, self._installed)
        until = min(end, self._estimated_until)
        estimate = estimated_peak(self.profile, self.tz, start, until) if start < until else None
        return higher(estimate, self._measured.get(month))

    def history(self, now: int) -> list[tuple[Month, QuarterPeak]]:
        """The completed months before ``now``'s month that the meter measured, oldest first."""
        months = months_before(month_of(now, self.tz), HISTORY_MONTHS)
        return [(m, peak) for m in months if (peak := self.month_peak(m)) is not None]

    def _forget_old(self, current: Month) -> None:
        keep = set(months_before(current, HISTORY_MONTHS)) | {current}
        for month in [m for m in self._measured if m not in keep]:
            del self._measured[month]
