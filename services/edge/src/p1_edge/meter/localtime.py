"""The meter's local times (no UTC offset) as instants, the repeated autumn hour included.

API v2's ``timestamp`` and both APIs' ``month_peak_ts``, ``gas_ts`` and ``water_ts`` are the meter's wall
clock without an offset. Outside the repeated hour a wall-clock time names one instant; inside it
(Europe/Brussels: 02:00–02:59 on the last Sunday of October) it names two, the first pass (summer time,
fold 0) and the second (winter time, fold 1). Which one, by these rules, in order:

**The reading's own time** (v2; v1 readings are stamped with the poll time, which is UTC):

1. *Continuity*: when this process saw the previous reading less than an hour ago, that reading is the
   reference. The meter's clock only goes forward and moves less than an hour between two readings, so
   the reading is the first instant not before the previous one: a clock that goes back inside the hour
   (02:59:59 → 02:00:00) is the second pass.
2. *The persisted state*: after a restart (or an hour without readings) the last reading's UTC time,
   committed with it in the spool's meta table, rules out the instants before it; when one is left, it
   is the one (a restart in the second pass).
3. *The telegram*: when both are left (a restart in the first pass, or no state at all), one GET of the
   DSMR telegram decides: its ``0-0:1.0.0(YYMMDDhhmmssS|W)`` carries the season flag (S: summer time).
4. No telegram: the first pass, logged (what the edge did before this rule existed).

**The times a reading carries** (peak, gas, water): a value the previous reading carried keeps the instant
it was given (a peak set in the first pass stays there in the second); a new one is the latest instant
not after the reading (the meter stamps an event once it has happened). Gas and water are captured at
least hourly, so their time is always the latest instant not after the reading; a month's peak can be
weeks old, so at the first reading of a process a peak time that could still be either is settled by
the telegram's flag for that time (``1-0:1.6.0``).

So the telegram is read only when a process starts (or readings resume after an hour) with a time inside
the repeated hour that the state cannot place: never every second.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from p1_edge.meter.mapping import Values

log = logging.getLogger(__name__)

STATE_KEY: Final = "meter_clock"  # the spool meta key of the persisted state
READING_TIME: Final = "ts"
# The reading's own time moves less than this between two readings of one process (rule 1); it is also
# the length of the repeated hour, the most a wrong fold can be off.
CONTINUITY_S: Final = 3600.0
# A meter stamps an event (a quarter's end, a gas capture) a little before the edge's poll sees it; a
# v1 reading's time is the edge's clock, which may lag the meter's by this much.
EVENT_SLACK: Final = timedelta(seconds=60)
# M-Bus values (gas, water) are captured every 5 minutes (DSMR 5) or every hour (DSMR 4): their time is
# less than an hour before the reading, so never in doubt.
CAPTURED: Final = frozenset({"gas_ts", "water_ts"})
# DSMR times: YYMMDDhhmmss and S (summer time) or W (winter time).
_DSMR_TIME = re.compile(r"\((\d{12})([SW])\)")
_TELEGRAM_TIME = re.compile(r"^0-0:1\.0\.0\((\d{12})([SW])\)", re.MULTILINE)


class InDoubt(Exception):
    """A local time that names two instants, which only the telegram can tell apart."""


@dataclass(frozen=True)
class ClockState:
    """What survives a restart: the last reading's instant and the fold its local time was in."""

    utc: float
    fold: int

    def dumps(self) -> str:
        return json.dumps({"utc": self.utc, "fold": self.fold})

    @classmethod
    def loads(cls, text: str | None) -> ClockState | None:
        """None for a missing or unreadable state (the rules then fall back to the telegram)."""
        try:
            raw = json.loads(text or "null")
            return cls(float(raw["utc"]), int(raw["fold"]))
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True)
class TelegramTimes:
    """The times a DSMR telegram carries, each with its season flag."""

    flags: dict[datetime, str] = field(default_factory=dict)  # naive local time → "S" or "W"
    now: datetime | None = None  # the telegram's own time (0-0:1.0.0), naive

    @classmethod
    def parse(cls, telegram: str) -> TelegramTimes:
        flags: dict[datetime, str] = {}
        for digits, flag in _DSMR_TIME.findall(telegram):
            local = _dsmr_local(digits)
            if local is not None:
                # a time given with both flags tells nothing
                flags[local] = flag if flags.get(local, flag) == flag else "?"
        own = _TELEGRAM_TIME.search(telegram)
        return cls(flags, _dsmr_local(own.group(1)) if own else None)


def _dsmr_local(digits: str) -> datetime | None:
    try:
        return datetime.strptime(digits, "%y%m%d%H%M%S")
    except ValueError:
        return None


def instants(local: datetime) -> tuple[datetime, ...]:
    """The UTC instants a local time (aware, in the meter's zone) names: one, or both passes of a
    repeated hour, first pass first. A time skipped in spring keeps fold 0's reading (PEP 495)."""
    first, second = local.replace(fold=0).astimezone(UTC), local.replace(fold=1).astimezone(UTC)
    return (first, second) if first < second else (first,)


def by_flag(choices: tuple[datetime, ...], flag: str | None, tz: ZoneInfo) -> datetime | None:
    """The instant whose season matches a DSMR flag (S: summer time); None when the flag does not tell."""
    matching = [c for c in choices if flag in ("S", "W") and bool(c.astimezone(tz).dst()) == (flag == "S")]
    return matching[0] if len(matching) == 1 else None


class LocalClock:
    """Places the local times of one meter's readings (see the module doc); one per edge process."""

    def __init__(
        self, tz: ZoneInfo, state: ClockState | None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._tz = tz
        self._state = state
        self._seen_at: float | None = None  # monotonic time this process placed the last reading
        self._monotonic = monotonic
        self._carried: dict[str, tuple[datetime, datetime]] = {}  # field → (local, instant) last time
        self._warned = False

    @property
    def state(self) -> ClockState | None:
        return self._state

    def needs_telegram(self, values: Values) -> bool:
        """Whether :meth:`place` would have to guess without the telegram."""
        try:
            self._decide(values, None, guess=False)
        except InDoubt:
            return True
        return False

    def place(self, values: Values, telegram: TelegramTimes | None = None) -> None:
        """Replaces every local time in ``values`` by its UTC instant and remembers the reading's."""
        decided = self._decide(values, telegram, guess=True)
        values.update(decided)
        ts = values.get(READING_TIME)
        if isinstance(ts, datetime):
            first = instants(ts.astimezone(self._tz))[0]
            self._state = ClockState(ts.timestamp(), fold=int(ts != first))  # 1: the second pass
            self._seen_at = self._monotonic()

    def _decide(self, values: Values, telegram: TelegramTimes | None, guess: bool) -> dict[str, datetime]:
        decided: dict[str, datetime] = {}
        ts = values.get(READING_TIME)
        if isinstance(ts, datetime) and self._is_local(ts):
            ts = decided[READING_TIME] = self._reading_time(ts, telegram, guess)
        carried: dict[str, tuple[datetime, datetime]] = {}
        for name, value in values.items():
            if name != READING_TIME and isinstance(value, datetime) and self._is_local(value):
                reference = ts if isinstance(ts, datetime) else None
                decided[name] = self._event_time(name, value, reference, telegram, guess)
                carried[name] = (value, decided[name])
        if guess:
            self._carried = carried
        return decided

    def _is_local(self, value: datetime) -> bool:
        return value.tzinfo is self._tz

    def _continuous(self) -> bool:
        return self._seen_at is not None and self._monotonic() - self._seen_at < CONTINUITY_S

    def _reading_time(self, local: datetime, telegram: TelegramTimes | None, guess: bool) -> datetime:
        choices = instants(local)
        if len(choices) == 1:
            return choices[0]
        previous = datetime.fromtimestamp(self._state.utc, UTC) if self._state else None
        later = [c for c in choices if previous is not None and c >= previous]
        if later and (self._continuous() or len(later) == 1):
            return later[0]  # rules 1 and 2
        now = self._telegram_now(telegram)
        if now is not None:  # rule 3: the pass nearest the telegram's own (flagged) time
            return min(choices, key=lambda c: abs(c - now))
        if not guess:
            raise InDoubt(local.isoformat())
        self._warn(local)
        return later[0] if later else choices[0]

    def _telegram_now(self, telegram: TelegramTimes | None) -> datetime | None:
        if telegram is None or telegram.now is None:
            return None
        return by_flag(
            instants(telegram.now.replace(tzinfo=self._tz)), telegram.flags.get(telegram.now), self._tz
        )

    def _event_time(
        self,
        name: str,
        local: datetime,
        reading: datetime | None,
        telegram: TelegramTimes | None,
        guess: bool,
    ) -> datetime:
        choices = instants(local)
        if len(choices) == 1:
            return choices[0]
        known = self._carried.get(name)
        if known is not None and known[0] == local:
            return known[1]
        if reading is None:
            return choices[0]
        past = [c for c in choices if c <= reading + EVENT_SLACK]
        if len(past) <= 1 or self._continuous() or name in CAPTURED:
            return past[-1] if past else choices[0]
        flag = telegram.flags.get(local.replace(tzinfo=None)) if telegram else None
        flagged = by_flag(choices, flag, self._tz)
        if flagged is not None:
            return flagged
        if not guess:
            raise InDoubt(f"{name} {local.isoformat()}")
        return past[-1]

    def _warn(self, local: datetime) -> None:
        if not self._warned:
            log.warning(
                "a meter time in the repeated hour that neither the state nor the telegram places: taken "
                "as the first pass",
                extra={"meter_time": local.replace(tzinfo=None).isoformat()},
            )
            self._warned = True
