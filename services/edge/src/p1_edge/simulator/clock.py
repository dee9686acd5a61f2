"""The simulated meter's clock: the real time, or a chosen start that runs at a chosen speed.

A test that needs a given instant (a month's end, a daylight-saving change) starts the meter there;
``speed`` 0 freezes it (so two requests see the same telegram) and :meth:`MeterClock.advance` moves it
on by whole seconds. The meter's time only ever goes forward, as a real meter's epoch time does.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from p1_contracts import timerange

MAX_SPEED = 3600.0  # an hour per second: the model integrates every simulated second


class MeterClock:
    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if not 0.0 <= speed <= MAX_SPEED:
            raise ValueError(f"speed must be between 0 and {MAX_SPEED:g}")
        if start is not None and (start.tzinfo is None or not timerange.in_range(start)):
            raise ValueError(f"start must be an aware time {timerange.DESCRIPTION}")
        self._real = start is None and speed == 1.0
        self._base = start.timestamp() if start is not None else time.time()
        self._t0 = time.monotonic()
        self._speed = speed
        self._offset = 0

    def now(self) -> int:
        """The meter's current epoch second."""
        if self._real:
            return math.floor(time.time()) + self._offset
        elapsed = (time.monotonic() - self._t0) * self._speed
        return math.floor(self._base + elapsed) + self._offset

    def advance(self, seconds: int) -> None:
        if seconds < 0:
            raise ValueError("the meter's clock only goes forward")
        if not timerange.in_range(datetime.fromtimestamp(self.now() + seconds, UTC)):
            raise ValueError(f"the meter's time must stay {timerange.DESCRIPTION}")
        self._offset += seconds
