"""The contract's string patterns, read from the generated models (never restated), for code that checks
a value outside a model: path parameters, token tables, the ingest fast parser, the edge's settings.

A pattern of openapi.yaml is written ``^…$``. Python's ``re.match``/``re.search`` with ``$`` also accept
a trailing newline (``"dev\\n"``), which the contract does not: use ``DEVICE_ID.fullmatch`` (or
``is_device_id``), and ``DEVICE_ID_SEARCH`` for engines that search (msgspec).
"""

import re
from typing import Final

from pydantic import BaseModel

from p1_contracts.models import SampleBatch


def field_pattern(model: type[BaseModel], name: str) -> str:
    """The ``pattern`` constraint of a model's field, as the spec writes it."""
    for meta in model.model_fields[name].metadata:
        pattern = getattr(meta, "pattern", None)
        if isinstance(pattern, str):
            return pattern
    raise LookupError(f"{model.__name__}.{name} has no pattern")


# A device id: as openapi.yaml writes it (FastAPI's and pydantic's ``pattern=``, error messages) …
DEVICE_ID_PATTERN: Final = field_pattern(SampleBatch, "device_id")
# … compiled, for ``fullmatch`` only …
DEVICE_ID: Final = re.compile(DEVICE_ID_PATTERN)
# … and anchored at the very start and end of the text, for engines that search (msgspec's Meta).
DEVICE_ID_SEARCH: Final = rf"\A(?:{DEVICE_ID_PATTERN})\Z"


def is_device_id(value: str) -> bool:
    return DEVICE_ID.fullmatch(value) is not None
