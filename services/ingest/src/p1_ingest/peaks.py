"""``PUT /v1/devices/{device_id}/meter-peaks``: the meter's own monthly peaks (docs/design.md §8).

Validated whole before anything is stored, by the contract model (``MeterPeaks``) and the rules it
cannot state: no key twice, no month twice, each ``peak_ts`` spelt as the contract says, inside the
supported range, at most 5 minutes ahead, and in its ``month`` as written (the meter's local time).
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import msgspec
from pydantic import ValidationError

from p1_contracts import timerange
from p1_contracts.models import MeterPeak, MeterPeaks
from p1_ingest.jsonkeys import check_duplicates
from p1_ingest.parse import MAX_FUTURE, refusal
from p1_servicekit.errors import FieldError, Unprocessable

_SPELLING: Final = f"must be {timerange.INSTANT_DESCRIPTION}"


@dataclass(frozen=True, slots=True)
class Peaks:
    """A validated body, column-wise as the statement takes it."""

    months: list[str]
    peak_w: list[float]
    peak_ts: list[datetime]


class _Spelt(msgspec.Struct):
    peak_ts: object = None


class _Body(msgspec.Struct):
    peaks: list[_Spelt] = []


def parse_peaks(body: bytes, now: datetime) -> Peaks:
    """The body's peaks, or ``BadRequest`` / ``Unprocessable`` naming every bad field."""
    try:
        peaks = MeterPeaks.model_validate_json(body).peaks
    except ValidationError as exc:
        raise refusal(exc) from None
    check_duplicates(body)  # a few hundred bytes: always the exact check
    refused = _misspelt(body) or _rules(peaks, now)
    if refused:
        raise Unprocessable(refused)
    return Peaks([p.month for p in peaks], [p.peak_w for p in peaks], [p.peak_ts for p in peaks])


def in_month(peak_ts: datetime, month: str) -> bool:
    """``peak_ts``, read in the offset it is written with, lies in ``month`` or is the instant it ends:
    the meter stamps a peak with the end of its quarter, so a month's last quarter is stamped 00:00 of
    the next month."""
    if f"{peak_ts:%Y-%m}" == month:
        return True
    before = peak_ts - timedelta(seconds=1)  # in the same offset: the local 23:59:59 before midnight
    return f"{before:%Y-%m}" == month and f"{peak_ts:%d %H:%M:%S.%f}" == "01 00:00:00.000000"


def _misspelt(body: bytes) -> list[FieldError]:
    """pydantic drops the pattern of a date-time and reads more spellings: the contract's only."""
    spelt = msgspec.json.decode(body, type=_Body).peaks
    return [
        FieldError(("body", "peaks", i, "peak_ts"), _SPELLING, "string_pattern_mismatch")
        for i, peak in enumerate(spelt)
        if isinstance(peak.peak_ts, str) and timerange.INSTANT_RE.fullmatch(peak.peak_ts) is None
    ]


def _rules(peaks: list[MeterPeak], now: datetime) -> list[FieldError]:
    seen: Counter[str] = Counter()
    errors = []
    for i, peak in enumerate(peaks):
        at = ("body", "peaks", i)
        seen[peak.month] += 1
        if seen[peak.month] > 1:
            errors.append(
                FieldError((*at, "month"), "this month appears earlier in the body", "duplicate_month")
            )
        if not timerange.in_range(peak.peak_ts):
            message = f"outside the supported range: {timerange.DESCRIPTION}"
            errors.append(FieldError((*at, "peak_ts"), message, "out_of_range"))
        elif peak.peak_ts > now + MAX_FUTURE:
            errors.append(FieldError((*at, "peak_ts"), "more than 5 minutes in the future", "ts_in_future"))
        elif not in_month(peak.peak_ts, peak.month):
            message = f"must lie in month {peak.month} or at its end (read in its own offset)"
            errors.append(FieldError((*at, "peak_ts"), message, "peak_ts_not_in_month"))
    return errors
