"""The Sample fields as data: name, kind, bounds — read from the generated contract model.

Deriving the table from ``p1_contracts.models.Sample`` (never restating it) keeps the fast parser,
the database columns and the contract in step: a field added to openapi.yaml appears here at once.
"""

import types
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Union, get_args, get_origin

from annotated_types import Ge, Le, MaxLen, MinLen, MultipleOf
from pydantic import AwareDatetime

from p1_contracts.models import Sample

Kind = Literal["float", "int", "datetime", "text"]


@dataclass(frozen=True)
class SampleField:
    name: str
    kind: Kind
    required: bool
    lo: float | None
    hi: float | None
    multiple_of: float | None
    # PostgreSQL type in which the value travels to the database (the column may be narrower:
    # tariff is a whole number sent as float8 into a smallint column).
    pg_type: str
    # A text field's pattern and lengths (the meters' ids); None for the other kinds.
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None


def _kind(annotation: object) -> tuple[Kind, bool]:
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        (annotation,) = args
    if annotation is float:
        return "float", nullable
    if annotation is int:
        return "int", nullable
    if annotation is AwareDatetime or annotation is datetime:
        return "datetime", nullable
    if annotation is str:
        return "text", nullable
    raise TypeError(f"unsupported Sample field type {annotation!r}")


def _fields() -> tuple[SampleField, ...]:
    out = []
    for name, info in Sample.model_fields.items():
        kind, _ = _kind(info.annotation)
        lo = next((float(m.ge) for m in info.metadata if isinstance(m, Ge)), None)  # type: ignore[arg-type]
        hi = next((float(m.le) for m in info.metadata if isinstance(m, Le)), None)  # type: ignore[arg-type]
        step = next((float(m.multiple_of) for m in info.metadata if isinstance(m, MultipleOf)), None)  # type: ignore[arg-type]
        pg = {"float": "float8", "int": "smallint", "datetime": "timestamptz", "text": "text"}[kind]
        pattern = next((p for m in info.metadata if isinstance(p := getattr(m, "pattern", None), str)), None)
        shortest = next((m.min_length for m in info.metadata if isinstance(m, MinLen)), None)
        longest = next((m.max_length for m in info.metadata if isinstance(m, MaxLen)), None)
        out.append(SampleField(name, kind, info.is_required(), lo, hi, step, pg, pattern, shortest, longest))
    return tuple(out)


FIELDS: Final = _fields()
FIELD_NAMES: Final = tuple(f.name for f in FIELDS)
# Everything but ts, in contract order: the value columns of a batch.
VALUE_FIELDS: Final = tuple(f for f in FIELDS if f.name != "ts")
