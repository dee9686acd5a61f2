"""The one way every answer writes a time (RFC 3339), whatever builds the answer.

- An **instant** (a reading's ``ts``, ``gas_ts``, ``first_seen``, ``as_of``, …) is written in UTC with ``Z``.
- A **bucket boundary** (series ``start``/``end``, a quarter's ``start``, a peak's start) is written in the
  offset of the zone the caller asked for, because that is the clock the bucket was cut on.
- Seconds always; a fraction only when it is not zero, then with six digits.

This is exactly how pydantic serialises an aware ``datetime`` in UTC or in a zone (a test holds the two
equal), so answers built through the contract models and answers built by hand (realtime from Redis,
streamed exports) read the same.
"""

from datetime import UTC, datetime, tzinfo


def _text(moment: datetime) -> str:
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def instant(moment: datetime) -> str:
    """An aware instant in UTC with ``Z``: ``2026-11-29T13:12:34Z``."""
    return _text(moment.astimezone(UTC))


def boundary(moment: datetime, zone: tzinfo) -> str:
    """A bucket boundary in ``zone``'s offset at that instant: ``2026-11-29T00:00:00+01:00``."""
    return _text(moment.astimezone(zone))
