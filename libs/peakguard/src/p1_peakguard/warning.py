"""The peak warning rule (README, "Capacity now and the peak guard"): pure, over the running quarter's
states in time order (``QuarterNow``, one per reading), with a small memory (``Guard``) between them.

A state *projects over* when ``projected_kw > threshold_kw``: the quarter ends over the threshold if the
present load continues to its end. A warning is given for a state when

1. it projects over, and every state of the quarter since at least ``HOLD_S`` (60 s) earlier did too:
   a load switched on and kept on, not a spike (a microwave's 30 s, a kettle's first minute near the end);
2. the present load crosses the threshold within ``LEAD_S`` (300 s) if it continues (``crossing_s``):
   a load that would need most of the quarter to push it over (a 2.5 kW kettle at the quarter's start
   on a low base needs ~14 minutes) is not warned about while it may still stop by itself; once it has
   run so long that ≤ 5 minutes of it are left to cross, it is;
3. no warning was given in this quarter yet (at most one per quarter; notify also records it in
   PostgreSQL so a restart or a second replica does not send it again).

What it guarantees: a load that starts at least 3 minutes before the quarter's end and projects the
quarter over is warned about 60 s after it started (its crossing is then < 2 minutes away, within
``LEAD_S``), at least 2 minutes before the end, while it still runs. A load starting 2 minutes before the
end is warned 60 s before the end; one starting later than 60 s before the end is not warned (too late
to act; the quarter's result still tells). A load that stops before its crossing comes within
``LEAD_S`` is never warned: its quarter cannot have gone over through it (a false warning needs a load
that stopped after the warning — someone acted, or it ended by itself).
"""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from p1_peakguard.quarter import QuarterNow

HOLD_S: Final = 60.0
LEAD_S: Final = 300.0


@dataclass(frozen=True, slots=True)
class Guard:
    """What the rule remembers of a device between two states: the quarter, since when its states have
    projected over (None: the last one did not), whether it was warned about."""

    quarter_start: datetime | None = None
    over_since: datetime | None = None
    warned: bool = False


def crossing_s(state: QuarterNow) -> float:
    """Seconds until the quarter's demand passes ``threshold_kw`` if the present load continues: 0 when
    it already has, ``math.inf`` when no import flows (it never will)."""
    need_kwh = state.threshold_kw / 4 - state.energy_kwh
    if need_kwh <= 0:
        return 0.0
    import_kw = max(state.power_w, 0.0) / 1000.0
    return math.inf if import_kw <= 0 else need_kwh / import_kw * 3600.0


def projects_over(state: QuarterNow) -> bool:
    return state.projected_kw > state.threshold_kw


def step(guard: Guard, state: QuarterNow) -> tuple[Guard, bool]:
    """The memory after ``state`` and whether to warn now. States must come in time order; a state of a
    new quarter starts a fresh memory."""
    if guard.quarter_start != state.quarter_start:
        guard = Guard(quarter_start=state.quarter_start)
    if not projects_over(state):
        return Guard(guard.quarter_start, None, guard.warned), False
    since = guard.over_since if guard.over_since is not None else state.as_of
    held = (state.as_of - since).total_seconds() >= HOLD_S
    warn = held and not guard.warned and crossing_s(state) <= LEAD_S
    return Guard(guard.quarter_start, since, guard.warned or warn), warn
