"""The prices CSV reader: good rows through, and each bad row named by line and column."""

import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from p1_tariffs.prices import MAX_PROBLEMS, PriceReader, PriceRow

HEADER = "start,end,import_eur_per_kwh,export_eur_per_kwh\n"
EXAMPLE = Path(__file__).resolve().parents[3] / "deploy/tariffs/prices-example.csv"


def utc(hour: int, minute: int) -> datetime:
    return datetime(2026, 3, 29, hour, minute, tzinfo=UTC)


def read(text: str) -> tuple[list[PriceRow], PriceReader]:
    reader = PriceReader(io.StringIO(text))
    return list(reader), reader


def test_good_rows_with_unknown_prices_and_comments() -> None:
    rows, reader = read(
        "# a comment\n\n"
        + HEADER
        + "2026-03-29T01:45:00+01:00,2026-03-29T03:00:00+02:00,0.1,\n"  # the quarter over the DST jump
        + "2026-03-29T01:00:00Z,2026-03-29T02:00:00Z,,-0.0125\n"
    )
    assert reader.problems == []
    assert rows == [
        PriceRow(
            datetime(2026, 3, 29, 0, 45, tzinfo=UTC),
            datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
            Decimal("0.1"),
            None,
        ),
        PriceRow(
            datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
            datetime(2026, 3, 29, 2, 0, tzinfo=UTC),
            None,
            Decimal("-0.0125"),
        ),
    ]


def test_every_bad_row_is_named_by_line_and_column() -> None:
    rows, reader = read(
        HEADER
        + "2026-06-01T00:00:00+02:00,2026-06-01T00:15:00+02:00,0.1,0.1\n"  # line 2: good
        + "2026-06-01T00:15:00+02:00,2026-06-01T00:30:00+02:00,NaN,0.1\n"  # 3
        + "2026-06-01T00:30:00+02:00,2026-06-01T00:45:00+02:00,0.1,1e3\n"  # 4
        + "2026-06-01 00:45,2026-06-01T01:00:00+02:00,0.1,0.1\n"  # 5: no offset, no T
        + "2026-06-01T01:00:00+02:00,2026-06-01T01:20:00+02:00,0.1,0.1\n"  # 6: 20 minutes
        + "2026-06-01T01:00:00.5+02:00,2026-06-01T01:15:00.5+02:00,0.1,0.1\n"  # 7: not on a quarter
        + "2026-06-01T00:00:00+02:00,2026-06-01T00:15:00+02:00,0.2,0.1\n"  # 8: line 2's start again
        + "2026-06-01T02:00:00+02:00,2026-06-01T02:15:00+02:00,10.5,0.1,\n"  # 9: five cells
        + "2000-01-01T00:30:00+01:00,2000-01-01T01:15:00+01:00,0.1,0.1\n"  # 10: before 2000 in UTC
        + "2026-06-01T03:00:00+02:00,2026-06-01T03:15:00+02:00,99999999999999999999,0.1\n"  # 11
    )
    assert len(rows) == 1
    assert reader.bad_rows == 9
    assert reader.problems == [
        "line 3, column import_eur_per_kwh: must be a number between -10 and 10, or empty",
        "line 4, column export_eur_per_kwh: must be a number between -10 and 10, or empty",
        "line 5, column start: must be an RFC 3339 date-time with an offset, written with a year 2000-2099, "
        "upper-case T and Z, seconds 00-59 and at most 6 fraction digits, e.g. 2026-11-29T00:00:00+01:00",
        "line 6, column end: must be 15 minutes or 1 hour after start",
        "line 7, column start: must begin on a whole quarter-hour",
        "line 8, column start: the same start as line 2",
        "line 9: 5 cells, expected 4 (start,end,import_eur_per_kwh,export_eur_per_kwh)",
        "line 10, column start: must be in 2000-2099 (UTC)",
        "line 11, column import_eur_per_kwh: must be a number between -10 and 10, or empty",
    ]


def test_a_wrong_header_and_broken_csv() -> None:
    rows, reader = read("start;end;import;export\n")
    assert (rows, reader.problems) == (
        [],
        ["line 1: the header must be start,end,import_eur_per_kwh,export_eur_per_kwh"],
    )
    rows, reader = read(HEADER + '"2026-06-01T00:00:00Z,\n')
    assert rows == []
    assert reader.problems[0].startswith("line 2: not valid CSV")


def test_problems_are_bounded() -> None:
    _, reader = read(HEADER + "x\n" * (MAX_PROBLEMS + 5))
    assert (len(reader.problems), reader.bad_rows) == (MAX_PROBLEMS, MAX_PROBLEMS + 5)


def test_the_example_is_a_day_of_quarters() -> None:
    with EXAMPLE.open(encoding="utf-8", newline="") as f:
        reader = PriceReader(f)
        rows = list(reader)
    assert reader.problems == []
    assert len(rows) == 96
    assert rows[-1].end - rows[0].start == (rows[0].end - rows[0].start) * 96
