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

import asyncio
import json
import logging
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

Peak = dict[str, object]  # a MeterPeak of the contract: month, peak_w, peak_ts
_SECOND = timedelta(seconds=1)
_PARSE_TIMEOUT_S = 60.0


async def telegram_peaks_apart(telegram: str, tz: ZoneInfo) -> list[Peak]:
    """:func:`telegram_peaks` in a child process. dsmr-parser brings dlms-cosem and its crypto stack
    (~13 MB resident, for good once imported); the edge reads the telegram once a day, so the 1 Hz
    process stays under its 50 MB (bench/edge.py) and pays a short child process a day instead."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, tz.key,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(child.communicate(telegram.encode()), _PARSE_TIMEOUT_S)
    except TimeoutError:
        child.kill()
        await child.wait()
        log.warning("the telegram's parser did not answer", extra={"timeout_s": _PARSE_TIMEOUT_S})
        return []
    if child.returncode != 0:
        log.warning("the telegram's parser failed", extra={"exit_code": child.returncode})
        return []
    found: list[Peak] = json.loads(out)
    return found


def telegram_peaks(telegram: str, tz: ZoneInfo) -> list[Peak]:
    """The monthly peaks in ``telegram``, oldest first, one per month (the running month's last);
    empty when it has none or cannot be parsed (its CRC is checked)."""
    from dsmr_parser import telegram_specifications
    from dsmr_parser.exceptions import ParseError
    from dsmr_parser.parsers import TelegramParser

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


if __name__ == "__main__":  # the child of telegram_peaks_apart: telegram on stdin, peaks as JSON out
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(telegram_peaks(sys.stdin.read(), ZoneInfo(sys.argv[1]))))
