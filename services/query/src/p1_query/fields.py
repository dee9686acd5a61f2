"""The fields query reads and answers with, taken from the generated contract models, never restated.

A field added to ``Sample`` in openapi.yaml (``make contracts``) and to ``samples`` by a migration reaches
realtime answers and raw exports with no change here: their statements and columns are built from
``SAMPLE_FIELDS``. The same goes for ``SeriesPoint`` and the bucketed exports' columns.
"""

import re
import types
from datetime import datetime
from typing import Final, Union, get_args, get_origin

from annotated_types import MaxLen, MultipleOf
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from p1_contracts.models import Device, EdgeState, Meter, Sample, SeriesPoint


def _bare(annotation: object) -> object:
    """``X`` of ``X | None``."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
    return annotation


def time_fields(model: type[BaseModel]) -> frozenset[str]:
    """The date-time fields of ``model``."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if _bare(info.annotation) in (AwareDatetime, datetime)
    )


def whole_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields ``model`` declares whole: an ``integer``, or a ``number`` with ``multipleOf: 1``
    (tariff, protocol_version). Answers write them as JSON integers (``forms``)."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if _bare(info.annotation) is int
        or any(isinstance(rule, MultipleOf) and rule.multiple_of == 1 for rule in info.metadata)
    )


# A text field whose contract pattern allows hex digits only (the meters' ids): its JSON text holds no
# comma, quote, bracket, backslash nor ``null``, so the CSV writer's shortcut (``forms.csv_rows``) holds.
_HEX_ONLY: Final = re.compile(r"\^\[(?:0-9|A-F|a-f)+\]\{[0-9]+(?:,[0-9]+)?\}\$")


def _hex_text(info: FieldInfo) -> bool:
    patterns = [p for rule in info.metadata if isinstance(p := getattr(rule, "pattern", None), str)]
    return _bare(info.annotation) is str and any(_HEX_ONLY.fullmatch(p) for p in patterns)


def _numbers_and_times(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model``, all numbers, date-times or hex-digit texts: the only kinds the exports'
    CSV writes unquoted (``forms.csv_rows``). Another kind is refused here, at import, not in a malformed
    file."""
    times = time_fields(model)
    for name, info in model.model_fields.items():
        if name not in times and _bare(info.annotation) not in (int, float) and not _hex_text(info):
            raise TypeError(f"{model.__name__}.{name}: query writes only numbers, date-times and hex texts")
    return tuple(model.model_fields)


SAMPLE_FIELDS: Final = _numbers_and_times(Sample)
SAMPLE_TIMES: Final = time_fields(Sample)
SAMPLE_WHOLES: Final = whole_fields(Sample)
POINT_FIELDS: Final = _numbers_and_times(SeriesPoint)
METER_FIELDS: Final = tuple(Meter.model_fields)
METER_WHOLES: Final = whole_fields(Meter)
EDGE_FIELDS: Final = tuple(EdgeState.model_fields)
EDGE_WHOLES: Final = whole_fields(EdgeState)


def _max_length(model: type[BaseModel], name: str) -> int:
    return next(rule.max_length for rule in model.model_fields[name].metadata if isinstance(rule, MaxLen))


# The pattern is p1_contracts.patterns'; its length bound, for FastAPI's path parameter, is here.
DEVICE_ID_MAX_LENGTH: Final = _max_length(Device, "device_id")
