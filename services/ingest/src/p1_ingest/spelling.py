"""The model path's check of how a reading's date-times are spelt: exactly openapi.yaml's pattern.

pydantic cannot apply a ``pattern`` to a datetime (datamodel-codegen drops it) and reads more spellings
than RFC 3339 (``2026-11-29 12:00:00Z``, a lower-case ``t``, seven fraction digits); the contract takes
only ``p1_contracts.timerange.INSTANT``. The fast path already takes nothing else, so this runs only when
the contract model judged the body, on the strings as the body spells them.
"""

from datetime import datetime
from typing import Final

import msgspec

from p1_contracts import timerange
from p1_ingest.batch import Value
from p1_ingest.fields import FIELDS
from p1_servicekit.errors import BadRequest, FieldError

_DATETIMES: Final = tuple(f.name for f in FIELDS if f.kind == "datetime")
_MESSAGE: Final = f"must be {timerange.INSTANT_DESCRIPTION}"
# Each reading's date-times as written (any JSON value: the model has judged the types already).
_Spelt: Final = msgspec.defstruct("Spelt", [(name, object, None) for name in _DATETIMES], gc=False)


class _Batch(msgspec.Struct):
    samples: list[_Spelt] = []  # type: ignore[valid-type]


_DECODE: Final = msgspec.json.Decoder(_Batch).decode


def misspelt(body: bytes, columns: dict[str, list[Value]]) -> list[FieldError]:
    """An error for each date-time the model read but the contract's pattern refuses. A value outside
    the supported range is left to ``parse.check_rules``, which names it as such."""
    try:
        samples = _DECODE(body).samples
    except (msgspec.DecodeError, RecursionError):  # not seen: msgspec reads deeper than the model
        raise BadRequest("The body is not valid JSON.") from None
    return [
        FieldError(("body", "samples", i, name), _MESSAGE, "string_pattern_mismatch")
        for name in _DATETIMES
        for i, (sample, value) in enumerate(zip(samples, columns[name], strict=True))
        if _refused(getattr(sample, name), value)
    ]


def _refused(spelt: object, value: Value) -> bool:
    in_range = not isinstance(value, datetime) or timerange.in_range(value)
    return isinstance(spelt, str) and timerange.INSTANT_RE.fullmatch(spelt) is None and in_range
