"""Bucket boundaries on the local clock of an IANA time zone.

Boundaries are UTC instants. ``1m`` and ``15m`` are the UTC grid: every UTC offset in use is a whole
number of quarter-hours, so a UTC quarter is a local quarter everywhere. ``1h`` is the local hour grid,
which for zones such as Asia/Kolkata (+05:30) lies on the half hour in UTC. ``1d`` and ``1mo`` are local
midnights, so a spring DST day is 23 hours long and an autumn one 25.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate, repeat
from operator import add
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

from p1_contracts import timerange
from p1_query.zones import DEFAULT_TZ as DEFAULT_TZ
from p1_query.zones import parse_tz as parse_tz
from p1_servicekit.errors import FieldError, Unprocessable

Bucket = Literal["1m", "15m", "1h", "1d", "1mo"]
# The stored tables a series is read from: raw samples or a rollup (groups.GROUPS_SQL).
Source = Literal["raw", "15m", "1h", "1d"]
BUCKETS: Final[tuple[str, ...]] = get_args(Bucket)
MAX_POINTS: Final = 10_000

_QUARTER: Final = timedelta(minutes=15)
_FIXED: Final = {"1m": timedelta(minutes=1), "15m": _QUARTER, "1h": timedelta(hours=1)}


def parse_bucket(value: str, allowed: tuple[str, ...] = BUCKETS, name: str = "bucket") -> str:
    if value not in allowed:
        raise Unprocessable(
            [FieldError(("query", name), f"must be one of {', '.join(allowed)}; got '{value[:16]}'", "enum")]
        )
    return value


def parse_instant(value: str, name: str) -> datetime:
    """Exactly what openapi.yaml's pattern and ``format: date-time`` allow (``timerange.INSTANT``: RFC 3339
    with an offset, years 2000–2099), then the supported range once the offset is applied: a time of
    2000-01-01 or 2099-12-31 can still fall outside (the one case the contract lists as semantic)."""
    parsed = _fromisoformat(value)
    if parsed is not None and not timerange.in_range(parsed):
        raise Unprocessable([FieldError(("query", name), f"must be {timerange.DESCRIPTION}", "out_of_range")])
    if parsed is None or timerange.INSTANT_RE.fullmatch(value) is None:
        msg = f"must be {timerange.INSTANT_DESCRIPTION}"
        if timerange.INSTANT_RE.fullmatch(value.replace(" ", "+")) is not None:
            msg += "; a '+' in a query string must be sent as %2B (unencoded it arrives as a space)"
        raise Unprocessable([FieldError(("query", name), msg, "datetime")])
    return parsed.astimezone(UTC)


def _fromisoformat(value: str) -> datetime | None:
    """The aware datetime Python reads from ``value`` (a wider grammar than the contract's), or None."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


def check_range(start: datetime, end: datetime) -> None:
    if end <= start:
        raise Unprocessable([FieldError(("query", "end"), "must be after start", "end_not_after_start")])


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # fold=0: where midnight falls in a DST gap this is the transition instant, the day's first instant.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _month_start(year: int, month: int, tz: ZoneInfo) -> datetime:
    return local_midnight(date(year, month, 1), tz)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def month_bounds(year: int, month: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return _month_start(year, month, tz), _month_start(*_next_month(year, month), tz)


def _floor_utc(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((t - epoch) // step) * step


def _on_local_hour(t: datetime, tz: ZoneInfo) -> bool:
    local = t.astimezone(tz)
    return local.minute == 0 and local.second == 0


def iter_boundaries(start: datetime, end: datetime, bucket: str, tz: ZoneInfo) -> Iterator[datetime]:
    """b0 ≤ start < b1 < … < bN with bN ≥ end: the first boundary at or before ``start``, then every
    boundary up to the first one at or after ``end``. Lazy, so exports of any length stay small."""
    if bucket in ("1m", "15m"):
        step = _FIXED[bucket]
        boundary = _floor_utc(start, step)
        yield boundary
        while boundary < end:
            boundary += step
            yield boundary
    elif bucket == "1h":
        # Walk the UTC quarter grid and keep instants on a local hour. The 1-hour jump is tried first
        # and verified, so a zone whose offset changes by 30 minutes (Australia/Lord_Howe) stays right.
        boundary = _floor_utc(start, _QUARTER)
        for _ in range(8):  # a local hour starts at most 1 h 45 min before any quarter
            if _on_local_hour(boundary, tz):
                break
            boundary -= _QUARTER
        yield boundary
        while boundary < end:
            following = boundary + _FIXED["1h"]
            if not _on_local_hour(following, tz):
                following = boundary + _QUARTER
                while not _on_local_hour(following, tz) and following - boundary < timedelta(hours=3):
                    following += _QUARTER
            boundary = following
            yield boundary
    elif bucket == "1d":
        day = start.astimezone(tz).date()
        boundary = local_midnight(day, tz)
        yield boundary
        while boundary < end:
            day += timedelta(days=1)
            boundary = local_midnight(day, tz)
            yield boundary
    elif bucket == "1mo":
        local = start.astimezone(tz)
        year, month = local.year, local.month
        boundary = _month_start(year, month, tz)
        yield boundary
        while boundary < end:
            year, month = _next_month(year, month)
            boundary = _month_start(year, month, tz)
            yield boundary
    else:  # parse_bucket guards the public entry points
        raise ValueError(f"unknown bucket {bucket}")


def estimate_points(start: datetime, end: datetime, bucket: str) -> int:
    """An upper bound of the bucket count, cheap enough to refuse huge requests before any work."""
    span = end - start
    if bucket in _FIXED:
        return int(span / _FIXED[bucket]) + 2
    if bucket == "1d":
        return span.days + 3
    return (end.year - start.year) * 12 + end.month - start.month + 2


def _too_many(bucket: str) -> Unprocessable:
    return Unprocessable(
        [
            FieldError(
                ("query", "bucket"),
                f"the range holds more than {MAX_POINTS} buckets of {bucket}; "
                "choose a coarser bucket or a shorter range",
                "too_many_points",
            )
        ]
    )


def check_size(start: datetime, end: datetime, bucket: str) -> None:
    """Refuses, before any work, a range that is clearly too large (the estimate can be off by the
    DST hours of the range, so the exact count is checked again by ``boundaries``)."""
    check_range(start, end)
    if estimate_points(start, end, bucket) > MAX_POINTS + 50:
        raise _too_many(bucket)


def boundaries(start: datetime, end: datetime, bucket: str, tz: ZoneInfo) -> list[datetime]:
    """The boundaries of a series request, refusing more than MAX_POINTS buckets."""
    check_size(start, end, bucket)
    if bucket in ("1m", "15m"):  # the UTC grid (``iter_boundaries``), at once: a month of quarters is 2,881
        step = _FIXED[bucket]
        first = _floor_utc(start, step)
        steps = -((first - end) // step)  # ⌈(end − first) / step⌉: the first boundary at or after end
        if steps > MAX_POINTS:
            raise _too_many(bucket)
        return list(accumulate(repeat(step, steps), add, initial=first))
    out: list[datetime] = []
    for bound in iter_boundaries(start, end, bucket, tz):
        out.append(bound)
        if len(out) > MAX_POINTS + 1:
            raise _too_many(bucket)
    return out


def outer_bounds(start: datetime, end: datetime, bucket: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """(first, last) of ``boundaries`` without the ones between: what a cache key needs, at the cost of a
    few time zone conversions instead of one per bucket."""
    first = next(iter_boundaries(start, start, bucket, tz))
    after_end = iter_boundaries(end, end, bucket, tz)
    last = next(after_end)
    if last < end:
        last = next(after_end)
    return first, last


def _is_midnight(t: datetime, tz: ZoneInfo) -> bool:
    local = t.astimezone(tz)
    return local.hour == 0 and local.minute == 0 and local.second == 0 and local.microsecond == 0


def _on_minute(bound: datetime, every: int) -> bool:
    """On a UTC multiple of ``every`` minutes (60: a whole hour)."""
    return bound.minute % every == 0 and bound.second == 0 and bound.microsecond == 0


def source_for(bucket: str, bounds: list[datetime], daily_zone: ZoneInfo | None = None) -> Source:
    """The coarsest stored table whose grid every boundary lies on (docs/design.md §4: rollups are
    UTC-aligned; rollup_1d holds the local days of ``daily_zone``, migration 0002)."""
    if bucket == "1m":
        return "raw"
    if bucket == "15m":  # its boundaries are the UTC quarter grid by construction: rollup_15m's
        return "15m"
    zone = daily_zone if bucket in ("1d", "1mo") else None
    if zone is not None and all(_is_midnight(bound, zone) for bound in bounds):
        return "1d"
    if bucket != "15m" and all(_on_minute(bound, 60) for bound in bounds):
        return "1h"
    if all(_on_minute(bound, 15) for bound in bounds):
        return "15m"
    return "raw"  # a historical offset such as +00:19:32: exact from raw readings, while they are kept
