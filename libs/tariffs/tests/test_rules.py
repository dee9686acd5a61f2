"""Which plan is in force when (hand-made cases), and a local date's first instant across DST changes."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from p1_tariffs.rules import Span, in_force, spans, starts_at


@dataclass(frozen=True)
class Row:
    name: str
    device_id: str
    starts_at: datetime


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


EVERYONE_1 = Row("everyone-1", "*", t(1))
DEMO_10 = Row("demo-10", "demo", t(10))
EVERYONE_10 = Row("everyone-10", "*", t(10))
EVERYONE_20 = Row("everyone-20", "*", t(20))
OTHER_5 = Row("other-5", "other", t(5))
PLANS = [EVERYONE_20, DEMO_10, OTHER_5, EVERYONE_10, EVERYONE_1]  # order of rows does not matter


@pytest.mark.parametrize(
    ("device", "at", "expected"),
    [
        ("demo", t(1) - timedelta(microseconds=1), None),  # before every plan
        ("demo", t(1), EVERYONE_1),  # a plan is in force from its start on (<=)
        ("demo", t(9, 23), EVERYONE_1),  # other's plan is not demo's
        ("demo", t(10), DEMO_10),  # same start as a '*' plan: the named one wins
        ("demo", t(19, 23), DEMO_10),
        ("demo", t(20), EVERYONE_20),  # a later '*' plan ends the named one
        ("other", t(5), OTHER_5),
        ("other", t(10), EVERYONE_10),  # the latest start wins, named or not
        ("third", t(12), EVERYONE_10),
        ("third", t(30), EVERYONE_20),
    ],
)
def test_in_force(device: str, at: datetime, expected: Row | None) -> None:
    assert in_force(PLANS, device, at) is expected


def test_spans_split_exactly_at_a_change() -> None:
    assert spans(PLANS, "demo", t(9, 12), t(21)) == [
        Span(t(9, 12), t(10), EVERYONE_1),
        Span(t(10), t(20), DEMO_10),  # EVERYONE_10's start is no change for demo
        Span(t(20), t(21), EVERYONE_20),
    ]
    assert spans(PLANS, "demo", t(1) - timedelta(hours=1), t(1, 1)) == [
        Span(t(1) - timedelta(hours=1), t(1), None),
        Span(t(1), t(1, 1), EVERYONE_1),
    ]
    assert spans(PLANS, "demo", t(11), t(12)) == [Span(t(11), t(12), DEMO_10)]
    assert spans(PLANS, "demo", t(12), t(12)) == []


@pytest.mark.parametrize(
    ("day", "tz", "expected"),
    [
        # Brussels: winter UTC+1, summer UTC+2; the clocks change at 02:00/03:00, not at midnight.
        (date(2026, 3, 28), "Europe/Brussels", datetime(2026, 3, 27, 23, 0, tzinfo=UTC)),
        (date(2026, 3, 29), "Europe/Brussels", datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),  # the 23-hour day
        (date(2026, 3, 30), "Europe/Brussels", datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),
        (date(2026, 10, 25), "Europe/Brussels", datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),  # the 25-hour day
        (date(2026, 10, 26), "Europe/Brussels", datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),
        (date(2026, 1, 1), "Asia/Kolkata", datetime(2025, 12, 31, 18, 30, tzinfo=UTC)),
        # Santiago jumps from 00:00 (UTC-4) to 01:00 (UTC-3) on 2026-09-06: that day begins at 04:00 UTC.
        (date(2026, 9, 6), "America/Santiago", datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),
        (date(2026, 9, 7), "America/Santiago", datetime(2026, 9, 7, 3, 0, tzinfo=UTC)),
    ],
)
def test_starts_at_is_the_local_dates_first_instant(day: date, tz: str, expected: datetime) -> None:
    assert starts_at(day, tz) == expected
