"""Local calendar months as UTC instants: the month a quarter belongs to (the capacity tariff's months are
the meter's local months) and the UTC days the month's whole-day summaries (``capacity_days``) cover."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Month:
    year: int
    month: int
    start: datetime  # UTC
    end: datetime  # UTC

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # fold=0: where midnight falls in a DST gap this is the transition instant (as p1_query.buckets).
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def month_of(ts: datetime, tz: ZoneInfo) -> Month:
    """The local month of ``tz`` holding ``ts``."""
    local = ts.astimezone(tz)
    year, month = local.year, local.month
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    start = _local_midnight(date(year, month, 1), tz)
    return Month(year, month, start, _local_midnight(date(*following, 1), tz))


def utc_day_floor(ts: datetime) -> datetime:
    return datetime.combine(ts.astimezone(UTC).date(), time(0), tzinfo=UTC)


def utc_day_ceil(ts: datetime) -> datetime:
    floor = utc_day_floor(ts)
    return floor if floor == ts else floor + _DAY
