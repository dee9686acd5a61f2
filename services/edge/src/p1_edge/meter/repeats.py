"""Tells a new telegram from the same telegram polled again, so each telegram is stored once.

The edge polls every second. API v2 stamps a reading with the telegram's own time, so a repeat has the
previous reading's ``ts``. API v1 gives no reading time: the poll's whole second stands in, and a meter
that sends a telegram every 10 s (DSMR 2.2 to 4.x) answers ten polls with one telegram. Values alone
cannot tell a repeat: a DSMR 5 meter with nothing switched on sends telegrams whose every value equals
the last one's (no field changes by itself in a telegram, and v1 shows no telegram time). So the rule:

* the same ``ts`` as the previous reading is a repeat (v2; v1 polled twice in one second);
* v1 and a meter of DSMR < 5 (``smr_version`` below 50: a telegram every :data:`SLOW_PERIOD_S`): a
  reading whose values and meter all equal the previous stored reading's, polled less than
  :data:`SLOW_PERIOD_S` after the first poll that saw them, is a repeat; the stored reading keeps that
  first poll's time. Equal values a whole period later are a new telegram and are stored.
* v1 and DSMR 5 (or a meter that does not say): every second's reading is new; nothing is dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from p1_edge.meter.client import Reading

SLOW_PERIOD_S: Final = 10  # DSMR 2.2–4.x send a telegram every 10 s, DSMR 5 every second
DSMR5: Final = 50  # HomeWizard's smr_version (v2: protocol_version) of a DSMR 5 meter


class Repeats:
    def __init__(self) -> None:
        self._last_ts: datetime | None = None
        self._last_values: str | None = None
        self._first_seen: datetime | None = None

    def is_repeat(self, reading: Reading) -> bool:
        """Whether ``reading`` is a telegram already stored; remembers it when it is not."""
        ts = reading.sample.ts
        if ts == self._last_ts:
            return True
        values = self._slow_meter_values(reading)
        if (
            values is not None
            and values == self._last_values
            and self._first_seen is not None
            and (ts - self._first_seen).total_seconds() < SLOW_PERIOD_S
        ):
            return True
        self._last_ts, self._last_values, self._first_seen = ts, values, ts
        return False

    @staticmethod
    def _slow_meter_values(reading: Reading) -> str | None:
        """Everything but the poll time, for a v1 reading of a slow (DSMR < 5) meter; else None."""
        meter = reading.meter
        if reading.timed_by_meter or meter is None or meter.protocol_version is None:
            return None
        if meter.protocol_version >= DSMR5:
            return None
        sample = reading.sample.model_dump_json(exclude={"ts"}, exclude_none=True)
        return f"{meter.model_dump_json(exclude_none=True)}{sample}"
