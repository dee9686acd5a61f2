"""Request body → validated ``ColumnBatch``, with exactly the contract's validation.

Two paths with one judge. The fast path parses with orjson and checks a whole column at a time with
C-level builtins (``set(map(type, col))``, ``min``/``max``); it only ever *accepts*, and only input
that it is sure the contract model accepts too. Anything else it is not sure about — a wrong type, an
out-of-range value, an unusual timestamp spelling, JSON orjson refuses — is handed to the contract
model (``SampleBatch.model_validate_json``), which is the judge: it accepts or names every bad field.
So a rejection always comes from the contract model, and ``tests/test_parse.py`` checks on a set of
edge cases that the fast path never accepts what the model rejects and agrees on the values.

Rules beyond the schema (``ts`` at most 5 minutes ahead) are applied to either path's result.
"""

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import repeat
from typing import Final, cast

import orjson
from pydantic import ValidationError

from p1_contracts.models import Meter, SampleBatch
from p1_servicekit.errors import BadRequest, FieldError, Forbidden, Unprocessable
from p1_servicekit.problems import field_errors

from .batch import ColumnBatch, Value, model_columns, model_json
from .fields import FIELDS, SampleField

MAX_FUTURE: Final = timedelta(minutes=5)
MAX_READINGS: Final = 5000
# Python's ``$`` also matches before a final newline; fullmatch does not. [0-9], not \d: \d is Unicode.
_DEVICE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# The one timestamp spelling the fast path takes; anything else goes to the contract model.
_RFC3339: Final = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_RFC3339_LINES: Final = re.compile(f"{_RFC3339}(?:\n{_RFC3339})*")
_NONE: Final = type(None)
_FLOAT_TYPES: Final = frozenset({float, int})
_FLOAT_OR_NONE: Final = frozenset({float, int, _NONE})
_INT_TYPES: Final = frozenset({int})
_INT_OR_NONE: Final = frozenset({int, _NONE})
_STR_TYPES: Final = frozenset({str})
_STR_OR_NONE: Final = frozenset({str, _NONE})


class _Unsure(Exception):
    """The fast path cannot vouch for the input: the contract model decides."""


def _timestamps(col: list[object], kinds: set[type]) -> list[Value]:
    # One regex call over the joined column and one C-level map, rather than two calls per reading.
    # Repeated values (month_peak_ts, gas_ts change rarely) are parsed once. A value with a newline
    # inside could pass the joined match, but fromisoformat then refuses it.
    texts = cast(list[str], [v for v in col if v is not None] if _NONE in kinds else col)
    if not texts:
        return cast(list[Value], col)  # all None
    unique = set(texts)
    if not _RFC3339_LINES.fullmatch("\n".join(unique)):
        raise _Unsure
    try:
        parsed = dict(zip(unique, map(datetime.fromisoformat, unique), strict=True))
    except ValueError:  # a date that does not exist, e.g. 2026-02-30
        raise _Unsure from None
    if _NONE not in kinds:
        return list(map(parsed.__getitem__, texts))
    return [None if v is None else parsed[cast(str, v)] for v in col]


def _column(samples: list[dict[str, object]], f: SampleField) -> list[Value]:
    # map over dict.get runs in C; a list comprehension would run a Python frame per reading.
    col: list[object] = list(map(dict.get, samples, repeat(f.name, len(samples))))
    kinds = set(map(type, col))
    if f.kind == "datetime":
        if not kinds <= (_STR_TYPES if f.required else _STR_OR_NONE):
            raise _Unsure
        return _timestamps(col, kinds)
    if f.kind == "float":
        allowed = _FLOAT_TYPES if f.required else _FLOAT_OR_NONE
    else:
        allowed = _INT_TYPES if f.required else _INT_OR_NONE
    if not kinds <= allowed:  # bool is its own type, so true/false never pass for a number
        raise _Unsure
    present = cast(list[float], [v for v in col if v is not None] if _NONE in kinds else col)
    if present and ((f.lo is not None and min(present) < f.lo) or (f.hi is not None and max(present) > f.hi)):
        raise _Unsure
    # JSON integers stay ints here (the model would make them floats): equal values, and asyncpg
    # encodes an int into a float8 column exactly as the float.
    return col  # type: ignore[return-value]  # checked above: numbers or None


def _meter(raw: object) -> Meter | None:
    if raw is None:
        return None
    if type(raw) is not dict:
        raise _Unsure
    serial, model, version = raw.get("serial"), raw.get("model"), raw.get("protocol_version")
    # ASCII only, so that the length in characters is beyond doubt.
    if type(serial) is not str or not (1 <= len(serial) <= 128) or not serial.isascii():
        raise _Unsure
    if model is not None and (type(model) is not str or len(model) > 128 or not model.isascii()):
        raise _Unsure
    if version is not None and (type(version) is not int or not 0 <= version <= 1000):
        raise _Unsure
    return Meter.model_construct(serial=serial, model=model, protocol_version=version)


# device_id, meter, columns in body order, the samples as JSON
Parsed = tuple[str, Meter | None, dict[str, list[Value]], str]


def fast_parse(obj: dict[str, object]) -> Parsed:
    """The fast path; raises ``_Unsure`` for anything it does not vouch for."""
    device_id = obj.get("device_id")
    samples = obj.get("samples")
    if type(device_id) is not str or not _DEVICE_ID.fullmatch(device_id):
        raise _Unsure
    if type(samples) is not list or not 1 <= len(samples) <= MAX_READINGS:
        raise _Unsure
    if set(map(type, samples)) != {dict}:
        raise _Unsure
    meter = _meter(obj.get("meter"))
    columns = {f.name: _column(samples, f) for f in FIELDS}
    # Re-serialised from the parsed values: the database gets exactly what was checked (one value per
    # key, numbers in shortest round-trip form), whatever the body's spelling was.
    return device_id, meter, columns, orjson.dumps(samples).decode()


def model_parse(body: bytes) -> Parsed:
    """The judge: the contract model. Raises ``BadRequest`` (not JSON) or ``Unprocessable``."""
    try:
        batch = SampleBatch.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise BadRequest("The body is not valid JSON.") from None
        raise Unprocessable(field_errors(errors, ("body",))) from None
    return batch.device_id, batch.meter, model_columns(batch), model_json(batch)


def parse_batch(
    body: bytes,
    now: datetime,
    may_write: Callable[[str], bool],
    on_fast: Callable[[bool], None] | None = None,
) -> ColumnBatch:
    """Parses and validates a whole batch. ``may_write(device_id)`` is asked as soon as the device id is
    known, so that a token of another device gets 403 even for a batch that is invalid too."""
    parsed: Parsed | None = None
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    if type(obj) is dict:
        device_id = obj.get("device_id")
        if type(device_id) is str and not may_write(device_id):
            raise Forbidden(f"This token may not write device {device_id[:64]!r}.")
        try:
            parsed = fast_parse(obj)
        except _Unsure:
            parsed = None
    if on_fast is not None:
        on_fast(parsed is not None)
    if parsed is None:
        parsed = model_parse(body)
        if not may_write(parsed[0]):
            raise Forbidden(f"This token may not write device {parsed[0]!r}.")
    device_id, meter, columns, samples_json = parsed
    check_rules(columns, now)
    return ColumnBatch(device_id, meter, columns, samples_json)


def check_rules(columns: dict[str, list[Value]], now: datetime) -> None:
    """Rules that the schema cannot express, on the readings in body order (indexes as sent)."""
    ts: list[datetime] = columns["ts"]  # type: ignore[assignment]  # required: never None
    limit = now + MAX_FUTURE
    if ts and max(ts) > limit:
        raise Unprocessable(
            [
                FieldError(("body", "samples", i, "ts"), "more than 5 minutes in the future", "ts_in_future")
                for i, t in enumerate(ts)
                if t > limit
            ]
        )
