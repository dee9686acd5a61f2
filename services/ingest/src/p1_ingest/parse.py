"""Request body → validated ``ColumnBatch``, with exactly the contract's validation.

Two paths with one judge. The fast path decodes with msgspec into structs generated from the contract
model's own field table (types, bounds, lengths, patterns — checked in C while parsing, no dict per
reading); it only ever *accepts*, and only input it is sure the contract model accepts too: timestamps
must have the one RFC 3339 spelling below, strings of the meter must be ASCII, and so on. Anything else
— a wrong type, an out-of-range value, an unusual spelling, JSON msgspec refuses — is handed to the
contract model (``SampleBatch.model_validate_json``), which is the judge: it accepts or names every bad
field. So a rejection always comes from the contract model, and ``tests/test_parse.py`` checks on a set
of edge cases that the fast path never accepts what the model rejects, and agrees on the values.

Rules beyond the schema are applied to either path's result: no key twice in one object
(``jsonkeys``), every date-time inside ``p1_contracts.timerange``, ``ts`` at most 5 minutes ahead. And one
rule of the schema that the model cannot apply: a date-time is spelt as openapi.yaml's pattern says
(``timerange.INSTANT``; pydantic drops a pattern on a datetime and reads more spellings, e.g. a space for
``T``); the fast path takes only that spelling, the model path checks it on the body's strings.
"""

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Annotated, Any, Final, NamedTuple

import msgspec
from pydantic import ValidationError

from p1_contracts import timerange
from p1_contracts.models import EdgeState, Meter, SampleBatch
from p1_contracts.patterns import DEVICE_ID_SEARCH
from p1_ingest.batch import ColumnBatch, Value, model_columns
from p1_ingest.edgestate import EdgeIn, edge_members, edge_state
from p1_ingest.fields import FIELDS, SampleField
from p1_ingest.jsonkeys import TOO_DEEP, check_duplicates, may_have_duplicates
from p1_ingest.spelling import misspelt
from p1_servicekit.errors import BadRequest, FieldError, Forbidden, Unprocessable
from p1_servicekit.problems import field_errors

MAX_FUTURE: Final = timedelta(minutes=5)
MAX_READINGS: Final = 5000
# msgspec matches patterns with re.search: the patterns given to it are anchored with \A and \Z (``$`` also
# matches before a final newline; the device id's is p1_contracts.patterns.DEVICE_ID_SEARCH). [0-9], not
# \d: \d is Unicode.
#
# The contract's timestamp spelling (timerange.INSTANT), the only one the fast path takes; anything else
# goes to the contract model. Checked once per column on the joined distinct values (one regex call, not
# one per reading).
_RFC3339_LINES: Final = re.compile(f"{timerange.INSTANT}(?:\n{timerange.INSTANT})*")
# Printable ASCII only, so that lengths in characters are beyond doubt.
_ASCII_1_128: Final = r"\A[ -~]{1,128}\Z"
_ASCII_0_128: Final = r"\A[ -~]{0,128}\Z"


class _Unsure(Exception):
    """The fast path cannot vouch for the input: the contract model decides."""


def _field_type(f: SampleField) -> Any:
    if f.kind == "datetime":
        base: Any = str  # spelling checked per column in _timestamps
    elif f.kind == "text":  # the contract's own pattern and lengths, anchored for msgspec's search
        pattern = None if f.pattern is None else rf"\A(?:{f.pattern})\Z"
        base = Annotated[str, msgspec.Meta(pattern=pattern, min_length=f.min_length, max_length=f.max_length)]
    else:
        meta = msgspec.Meta(ge=f.lo, le=f.hi, multiple_of=f.multiple_of)
        base = Annotated[float if f.kind == "float" else int, meta]
    return base if f.required else base | None


# Structs generated from the contract's field table; unknown fields are ignored, as the contract says.
# gc=False: they hold only scalars, so the cyclic GC need not track 5,000 of them per batch.
_SampleIn: Final = msgspec.defstruct(
    "SampleIn",
    [(f.name, _field_type(f)) if f.required else (f.name, _field_type(f), None) for f in FIELDS],
    gc=False,
)


class _MeterIn(msgspec.Struct, gc=False):
    serial: Annotated[str, msgspec.Meta(pattern=_ASCII_1_128)]
    model: Annotated[str, msgspec.Meta(pattern=_ASCII_0_128)] | None = None
    protocol_version: Annotated[float, msgspec.Meta(ge=0, le=1000, multiple_of=1)] | None = None


class _BatchIn(msgspec.Struct):
    device_id: Annotated[str, msgspec.Meta(pattern=DEVICE_ID_SEARCH)]
    samples: Annotated[list[_SampleIn], msgspec.Meta(min_length=1, max_length=MAX_READINGS)]  # type: ignore[valid-type]
    meter: _MeterIn | None = None
    edge: EdgeIn | None = None


class _DeviceOnly(msgspec.Struct):
    device_id: str | None = None


_DECODE: Final = msgspec.json.Decoder(_BatchIn).decode
_DECODE_DEVICE: Final = msgspec.json.Decoder(_DeviceOnly).decode
_GETTERS: Final = [(f, attrgetter(f.name)) for f in FIELDS]
_DATETIMES: Final = tuple(f.name for f in FIELDS if f.kind == "datetime")
_REQUIRED: Final = sum(f.required for f in FIELDS)
_OPTIONAL: Final = tuple(f.name for f in FIELDS if not f.required)
# Bodies nested beyond a decoder's limit: msgspec raises RecursionError, not a DecodeError.
_UNDECODABLE: Final = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


def _timestamps(col: list[Any]) -> tuple[list[Value], int]:
    """The column parsed, and how many colons its spellings hold at least (for ``jsonkeys``)."""
    # Repeated values (month_peak_ts, gas_ts change rarely) are checked and parsed once. fullmatch over
    # the values joined by newlines; a value with a newline inside would pass it, but fromisoformat
    # refuses such a value.
    unique = set(col)
    unique.discard(None)
    if unique and not _RFC3339_LINES.fullmatch("\n".join(unique)):
        raise _Unsure
    try:
        parsed: dict[str | None, datetime | None] = {t: datetime.fromisoformat(t) for t in unique}
    except ValueError:  # a date that does not exist, e.g. 2026-02-30
        raise _Unsure from None
    parsed[None] = None
    # Each spelling has hh:mm:ss, and an offset ±hh:mm unless it ends in Z; with both kinds in one
    # column the offsets' colons are left uncounted (a lower bound is all jsonkeys needs).
    present = len(col) - col.count(None)
    offsets = present if not any(t.endswith("Z") for t in unique) else 0
    return list(map(parsed.__getitem__, col)), 2 * present + offsets


class Parsed(NamedTuple):
    device_id: str
    meter: Meter | None
    columns: dict[str, list[Value]]  # in body order
    string_colons: int | None  # colons inside the body's strings, at least; None: not known
    edge: EdgeState | None = None


def fast_parse(body: bytes) -> Parsed:
    """The fast path; raises ``_Unsure`` for anything it does not vouch for."""
    try:
        batch = _DECODE(body)
    except _UNDECODABLE:
        raise _Unsure from None
    samples = batch.samples
    columns: dict[str, list[Value]] = {}
    string_colons = 0
    for f, get in _GETTERS:
        col = list(map(get, samples))
        if f.kind == "datetime":
            col, colons = _timestamps(col)
            string_colons += colons
        columns[f.name] = col
    m = batch.meter
    meter = (
        None
        if m is None
        else Meter.model_construct(serial=m.serial, model=m.model, protocol_version=m.protocol_version)
    )
    return Parsed(batch.device_id, meter, columns, string_colons, edge_state(batch.edge))


def refusal(exc: ValidationError) -> BadRequest | Unprocessable:
    """What a contract model's refusal of a body is answered: 400 when it is not JSON (or too deep),
    else 422 naming every bad field."""
    errors = exc.errors(include_url=False, include_input=False)
    invalid = [str(e.get("msg", "")) for e in errors if e["type"] == "json_invalid"]
    if invalid:
        # pydantic's parser stops at its depth limit with a json_invalid of its own words.
        too_deep = any("recursion limit" in msg for msg in invalid)
        return BadRequest(TOO_DEEP if too_deep else "The body is not valid JSON.")
    return Unprocessable(field_errors(errors, ("body",)))


def model_parse(body: bytes) -> Parsed:
    """The judge: the contract model. Raises ``BadRequest`` (not JSON) or ``Unprocessable``."""
    try:
        batch = SampleBatch.model_validate_json(body)
    except ValidationError as exc:
        raise refusal(exc) from None
    columns = model_columns(batch)
    misspelt_times = misspelt(body, columns)
    if misspelt_times:
        raise Unprocessable(misspelt_times)
    return Parsed(batch.device_id, batch.meter, columns, None, batch.edge)


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
        parsed = fast_parse(body)
    except _Unsure:
        try:  # for the 403 below: even an invalid batch of another device is refused as such
            device_id = _DECODE_DEVICE(body).device_id
        except _UNDECODABLE:
            device_id = None
        if device_id is not None and not may_write(device_id):
            raise Forbidden(f"This token may not write device {device_id[:64]!r}.") from None
    else:
        if not may_write(parsed.device_id):
            raise Forbidden(f"This token may not write device {parsed.device_id!r}.")
    if on_fast is not None:
        on_fast(parsed is not None)
    if parsed is None:
        parsed = model_parse(body)
        if not may_write(parsed.device_id):
            raise Forbidden(f"This token may not write device {parsed.device_id!r}.")
    device_id, meter, columns, string_colons, edge = parsed
    optional = (columns[name] for name in _OPTIONAL)
    required = _REQUIRED * len(columns["ts"]) + edge_members(edge)
    if may_have_duplicates(body, meter, required, optional, string_colons):
        check_duplicates(body)
    check_rules(columns, now)
    return ColumnBatch(device_id, meter, columns, edge)


def check_rules(columns: dict[str, list[Value]], now: datetime) -> None:
    """Rules that the schema cannot express, on the readings in body order (indexes as sent)."""
    out_of_range = [e for name in _DATETIMES for e in _outside_timerange(name, columns[name])]
    if out_of_range:
        raise Unprocessable(out_of_range)
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


def _outside_timerange(name: str, col: list[Value]) -> list[FieldError]:
    """A FieldError for each value of a date-time column outside the supported range."""
    values: list[datetime] = [t for t in col if t is not None]  # type: ignore[misc]  # a datetime column
    try:  # the usual case: two comparisons per reading, in C
        if not values or (min(values) >= timerange.EARLIEST and max(values) < timerange.LATEST):
            return []
    except OverflowError:  # an offset that takes a value past year 1 or 9999: look one by one
        pass
    return [
        FieldError(
            ("body", "samples", i, name),
            f"outside the supported range: {timerange.DESCRIPTION}",
            "out_of_range",
        )
        for i, t in enumerate(col)
        if isinstance(t, datetime) and not timerange.in_range(t)
    ]
