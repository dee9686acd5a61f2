"""The one time range the whole system supports: readings, stored rows, series, capacity and exports.

Instants from ``EARLIEST`` (2000-01-01T00:00:00Z, inclusive) to ``LATEST`` (2100-01-01T00:00:00Z,
exclusive); months 2000-01 to 2099-12.

Why these bounds: a DSMR telegram writes its times as ``YYMMDDhhmmss`` with a two-digit year, so a smart
meter cannot express anything outside 2000–2099, and no P1 reading predates 2000. Inside these bounds the
local bucket boundaries of every IANA zone (a month of a +14:00 or −12:00 zone reaches ~14 h past either
end) stay far from the limits of Python's ``datetime`` (year 1 to 9999), so no computation can overflow.

This module is the owner of the range; the database's CHECK constraint (migration 0005) and the
patterns of openapi.yaml restate it, and tests hold them equal.
"""

from datetime import UTC, datetime
from typing import Final

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
FIRST_YEAR: Final = EARLIEST.year
LAST_YEAR: Final = LATEST.year - 1
# Said the same way in every error message that refuses a value outside the range.
DESCRIPTION: Final = "between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z (exclusive)"
MONTHS_DESCRIPTION: Final = "a month from 2000-01 to 2099-12"


def in_range(instant: datetime) -> bool:
    """True for an aware ``instant`` inside [EARLIEST, LATEST). Never raises: an instant whose UTC form
    Python cannot represent (``0001-01-01T00:00:00+01:00``) is simply outside."""
    try:
        return EARLIEST <= instant < LATEST
    except OverflowError:
        return False


def month_in_range(year: int) -> bool:
    return FIRST_YEAR <= year <= LAST_YEAR
