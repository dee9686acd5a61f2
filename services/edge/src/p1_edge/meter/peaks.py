"""The meter's own monthly peaks, read from its DSMR telegram with dsmr-parser (docs/design.md §8).

A Belgian meter keeps the peak quarter-hour demand of each of the last 13 months (OBIS ``0-0:98.1.0``:
per month the month's closing time, the peak's time and the peak in kW) and of the running month
(``1-0:1.6.0``). The meter stamps a peak with the end of its quarter, so the last quarter of a month is
stamped 00:00 of the next: a history entry's month is the one its closing time ends, the running
peak's the one its time minus a second lies in. Times are the meter's local times with the DSMR season
flag; dsmr-parser reads them as Dutch time (the same offsets as Belgian time), they are written here in
``METER_TZ``. A telegram without these lines (a Dutch meter) has no peaks.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dsmr_parser import telegram_specifications
from dsmr_parser.exceptions import ParseError
from dsmr_parser.parsers import TelegramParser

log = logging.getLogger(__name__)

Peak = dict[str, object]  # a MeterPeak of the contract: month, peak_w, peak_ts
_SECOND = timedelta(seconds=1)


def telegram_peaks(telegram: str, tz: ZoneInfo) -> list[Peak]:
    """The monthly peaks in ``telegram``, oldest first, one per month (the running month's last);
    empty when it has none or cannot be parsed (its CRC is checked)."""
    try:
        parsed: Any = TelegramParser(telegram_specifications.BELGIUM_FLUVIUS).parse(telegram)
    except (ParseError, ValueError) as exc:
        log.warning("cannot parse the meter's telegram for its peaks", extra={"error": str(exc)})
        return []
    peaks: dict[str, Peak] = {}
    for entry in getattr(parsed, "BELGIUM_MAXIMUM_DEMAND_13_MONTHS", None) or []:
        _add(peaks, entry.datetime, entry.occurred, entry.value, tz)
    running = getattr(parsed, "BELGIUM_MAXIMUM_DEMAND_MONTH", None)
    if running is not None:
        _add(peaks, running.datetime, running.datetime, running.value, tz)
    return [peaks[month] for month in sorted(peaks)]


def _add(peaks: dict[str, Peak], closes: object, occurred: object, kw: object, tz: ZoneInfo) -> None:
    """One month's peak; an entry the meter leaves blank (no time, a placeholder date) is skipped."""
    if not isinstance(closes, datetime) or not isinstance(occurred, datetime) or not isinstance(kw, Decimal):
        return
    month = f"{(closes - _SECOND).astimezone(tz):%Y-%m}"
    peaks[month] = {
        "month": month,
        "peak_w": float(kw * 1000),
        "peak_ts": occurred.astimezone(tz).isoformat(),
    }
