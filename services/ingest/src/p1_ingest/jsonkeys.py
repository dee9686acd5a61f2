"""Duplicate keys in a batch: a 422, never "the last one wins".

Both decoders (msgspec and the contract model) keep the last of two equal keys, so a body could say
one thing to a reader of its first key and store another. An exact check (the body decoded with every
object's pairs kept) costs several times the fast parse, so it runs only when a cheap count says the
body may hold a duplicate; for the bodies edges send, it never does.

The count, for a body without a backslash (so no escaped quote, and every key spelled as itself):
each member of each object has exactly one colon outside strings, so the body's colons less those
known to sit inside strings (``string_colons``, a lower bound: the timestamps' hh:mm:ss and offsets)
is at least the number of members. Members are: the decoded batch's non-null known values (one per
key: the last occurrence), plus members with a null value, plus earlier occurrences of a key with a
non-null value, plus unknown keys. So when the count equals the non-null known values (with
``device_id``, ``samples`` and ``meter``), there is no null member, no unknown one, and no duplicate.
One null is allowed for: the ``"meter":null`` edges send for a meter that gives no identity (one more
member, a null one, with the batch's meter None: it cannot be a duplicate, see ``may_have_duplicates``).
Anything else — a null reading value, an unknown field, a colon in a meter's name, a body the fast path
did not parse (``string_colons`` None) — only ever sends a body to the exact check, never past it.
"""

import json
from collections.abc import Iterable, Sequence
from typing import Final

from p1_contracts.models import Meter
from p1_ingest.batch import Value
from p1_servicekit.errors import BadRequest, FieldError, Unprocessable

# Where a ``"meter":null`` of an edge sits: counting there first spares a scan of the whole body.
_HEAD: Final = 512
_MAX_ERRORS: Final = 100
_MAX_KEY_IN_LOC: Final = 64
TOO_DEEP: Final = "The body is nested too deeply."


def may_have_duplicates(
    body: bytes,
    meter: Meter | None,
    required_values: int,
    optional_columns: Iterable[Sequence[Value]],
    string_colons: int | None,
) -> bool:
    """False only when the body certainly has no two equal keys in one object (see the module doc).
    ``required_values``: how many values the readings' required fields hold (never null), plus the
    members of the edge's report (``edgestate.edge_members``)."""
    if string_colons is None or b"\\" in body:
        return True
    members_at_least = body.count(b":") - string_colons
    # device_id, samples, then the values
    known = 2 + required_values + sum(len(col) - col.count(None) for col in optional_columns)
    if meter is not None:
        known += 1 + sum(v is not None for v in (meter.serial, meter.model, meter.protocol_version))
    extra = members_at_least - known
    # extra == 1 with a "meter":null seen: that is the one extra member, and null. It could only be a
    # duplicate beside a non-null "meter" in its object, which would be a second extra member (an
    # earlier occurrence, or an unknown key in a reading), or the decoded meter (but that is None).
    return not (extra == 0 or (extra == 1 and meter is None and b'"meter":null' in body[:_HEAD]))


def check_duplicates(body: bytes) -> None:
    """Raises ``Unprocessable`` naming each key that occurs twice in one object (the exact check)."""
    try:
        tree = json.loads(body, object_pairs_hook=_Pairs)
    except RecursionError:
        raise BadRequest(TOO_DEEP) from None
    except ValueError:  # both decoders accepted it; json's stricter UTF-8 handling may not
        raise BadRequest("The body is not valid JSON.") from None
    errors: list[FieldError] = []
    try:
        _walk(tree, ("body",), errors)
    except RecursionError:
        raise BadRequest(TOO_DEEP) from None
    if errors:
        raise Unprocessable(errors[:_MAX_ERRORS])


class _Pairs(list[tuple[str, object]]):
    """An object's members in body order, duplicates kept."""


def _walk(node: object, loc: tuple[str | int, ...], errors: list[FieldError]) -> None:
    if len(errors) >= _MAX_ERRORS:
        return
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for key, value in node:
            here = (*loc, key[:_MAX_KEY_IN_LOC])
            if key in seen:
                errors.append(FieldError(here, "occurs more than once in its object", "duplicate_key"))
            seen.add(key)
            _walk(value, here, errors)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, (*loc, i), errors)
