"""The market prices CSV (README "Tariffs"): ``start,end,import_eur_per_kwh,export_eur_per_kwh``.

``start`` and ``end`` are RFC 3339 instants with an offset (``p1_contracts.timerange.INSTANT``), an interval
of a quarter-hour or an hour beginning on a whole quarter-hour; a price is a number in € per kWh excl. VAT
(and excl. a plan's markup), between -10 and 10, or empty: unknown (a bucket needing it gets a null cost).
Blank lines and lines beginning with ``#`` (comments) are skipped.

``PriceReader`` reads a file of any length row by row (its caller streams the good rows on) and keeps a
message for each bad row naming its line and column; the caller stores nothing when there is any. It
keeps one set of the starts seen (a start twice is a mistake: which row would win?), a few MB for decades
of quarter-hours.
"""

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, TextIO

from p1_contracts.timerange import EARLIEST, INSTANT_DESCRIPTION, INSTANT_RE, in_range
from p1_tariffs.numbers import PRICE_BOUND

COLUMNS: Final = ("start", "end", "import_eur_per_kwh", "export_eur_per_kwh")
SPANS: Final = (timedelta(minutes=15), timedelta(hours=1))  # checked exactly (timedelta, not float seconds)
# A price as the file writes it: plain decimal digits (no exponent, NaN or infinity), bounded in length.
NUMBER_RE: Final = re.compile(r"-?[0-9]{1,2}(?:\.[0-9]{1,12})?")
MAX_PROBLEMS: Final = 1000  # the messages kept; the rest are counted
QUARTER: Final = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class PriceRow:
    start: datetime
    end: datetime
    import_eur_per_kwh: Decimal | None
    export_eur_per_kwh: Decimal | None


def _skipped(cells: list[str]) -> bool:
    """A blank line, or a comment: a line whose first cell begins with ``#``."""
    return not cells or (len(cells) == 1 and not cells[0].strip()) or cells[0].lstrip().startswith("#")


class PriceReader:
    """Iterating yields the good rows; afterwards ``problems`` (and ``bad_rows``) say what was wrong."""

    def __init__(self, text: TextIO) -> None:
        self._text = text
        self.problems: list[str] = []
        self.bad_rows = 0
        self.rows = 0
        self._seen: dict[datetime, int] = {}

    def _problem(self, line: int, column: str | None, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"line {line}{f', column {column}' if column else ''}: {message}")

    def __iter__(self) -> Iterator[PriceRow]:
        reader = csv.reader(self._text, strict=True)
        try:
            rows = (cells for cells in reader if not _skipped(cells))
            header = next(rows, None)
            if header is None or tuple(c.strip() for c in header) != COLUMNS:
                self.bad_rows += 1
                self._problem(reader.line_num or 1, None, f"the header must be {','.join(COLUMNS)}")
                return
            for cells in rows:
                row = self._row(reader.line_num, cells)
                if row is None:
                    self.bad_rows += 1
                else:
                    self.rows += 1
                    yield row
        except csv.Error as exc:  # a quote left open, a field over csv's size limit: the rest is unreadable
            self.bad_rows += 1
            self._problem(reader.line_num, None, f"not valid CSV ({exc}); reading stopped here")
        except UnicodeDecodeError:
            self.bad_rows += 1
            self._problem(reader.line_num + 1, None, "not UTF-8 text; reading stopped here")

    def _row(self, line: int, cells: list[str]) -> PriceRow | None:
        if len(cells) != len(COLUMNS):
            self._problem(line, None, f"{len(cells)} cells, expected {len(COLUMNS)} ({','.join(COLUMNS)})")
            return None
        start, end = (
            self._instant(line, name, cell) for name, cell in zip(COLUMNS[:2], cells[:2], strict=True)
        )
        (imp_ok, imp), (exp_ok, exp) = (
            self._price(line, name, cell) for name, cell in zip(COLUMNS[2:], cells[2:], strict=True)
        )
        ok = imp_ok and exp_ok
        if start is not None and (start - EARLIEST) % QUARTER != timedelta(0):
            self._problem(line, "start", "must begin on a whole quarter-hour")
            ok = False
        if start is not None and end is not None and end - start not in SPANS:
            self._problem(line, "end", "must be 15 minutes or 1 hour after start")
            ok = False
        if start is not None:
            if start in self._seen:
                self._problem(line, "start", f"the same start as line {self._seen[start]}")
                ok = False
            else:
                self._seen[start] = line
        if not ok or start is None or end is None:
            return None
        return PriceRow(start, end, imp, exp)

    def _instant(self, line: int, column: str, cell: str) -> datetime | None:
        value = cell.strip()
        if INSTANT_RE.fullmatch(value) is None:
            self._problem(line, column, f"must be {INSTANT_DESCRIPTION}")
            return None
        instant = datetime.fromisoformat(value)
        if not in_range(instant):
            self._problem(line, column, "must be in 2000-2099 (UTC)")
            return None
        return instant

    def _price(self, line: int, column: str, cell: str) -> tuple[bool, Decimal | None]:
        """(good, the price): None for an empty cell (unknown); not good after a message."""
        value = cell.strip()
        if not value:
            return True, None
        if NUMBER_RE.fullmatch(value) is None or not -PRICE_BOUND <= Decimal(value) <= PRICE_BOUND:
            self._problem(
                line, column, f"must be a number between -{PRICE_BOUND} and {PRICE_BOUND}, or empty"
            )
            return False, None
        return True, Decimal(value)
