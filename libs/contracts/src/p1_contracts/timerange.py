"""The one time range the whole system supports: readings, stored rows, series, capacity and exports.

Instants from ``EARLIEST`` (2000-01-01T00:00:00Z, inclusive) to ``LATEST`` (2100-01-01T00:00:00Z,
exclusive); months 2000-01 to 2099-12.

Why these bounds: a DSMR telegram writes its times as ``YYMMDDhhmmss`` with a two-digit year, so a smart
meter cannot express anything outside 2000–2099, and no P1 reading predates 2000. Inside these bounds the
local bucket boundaries of every IANA zone (a month of a +14:00 or −12:00 zone reaches ~14 h past either
end) stay far from the limits of Python's ``datetime`` (year 1 to 9999), so no computation can overflow.

This module is the owner of the range; the database's CHECK constraint (migration 0005) and the
patterns of openapi.yaml restate it, and tests hold them equal.

``INSTANT`` is how an instant the services take is spelt (openapi.yaml's pattern of ``start``, ``end`` and
a Sample's date-times is ``^INSTANT$``): RFC 3339 as both Python's ``fromisoformat`` and pydantic read it
(upper-case ``T`` and ``Z``, seconds 00–59, no leap second, at most six fraction digits, an offset
±hh:mm), in the years of the range. RFC 3339 alone is wider on both sides of what the services read (a
lower-case ``t``, a leap second, a year 0001), hence the pattern. It cannot say the rest: an instant written
on 2000-01-01 or 2099-12-31 may still fall outside the range once its offset is applied
(``2000-01-01T00:30:00+01:00``), which ``in_range`` decides.
"""

import re
from datetime import UTC, datetime
from typing import Final

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
FIRST_YEAR: Final = EARLIEST.year
LAST_YEAR: Final = LATEST.year - 1
# Said the same way in every error message that refuses a value outside the range.
DESCRIPTION: Final = "between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z (exclusive)"
MONTHS_DESCRIPTION: Final = "a month from 2000-01 to 2099-12"
# [0-9], not \d (any Unicode digit). Use with fullmatch: ``$`` would also match before a final newline.
# Groups without capture: the ingest fast path matches it over a whole batch's timestamps at once.
INSTANT: Final = (
    r"20[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
INSTANT_RE: Final = re.compile(INSTANT)
INSTANT_DESCRIPTION: Final = (
    "an RFC 3339 date-time with an offset, written with a year 2000-2099, upper-case T and Z, seconds "
    "00-59 and at most 6 fraction digits, e.g. 2026-11-29T00:00:00+01:00"
)


def in_range(instant: datetime) -> bool:
    """True for an aware ``instant`` inside [EARLIEST, LATEST). Never raises: an instant whose UTC form
    Python cannot represent (``0001-01-01T00:00:00+01:00``) is simply outside."""
    try:
        return EARLIEST <= instant < LATEST
    except OverflowError:
        return False


def month_in_range(year: int) -> bool:
    return FIRST_YEAR <= year <= LAST_YEAR
