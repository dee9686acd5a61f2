"""The edge's report of itself (SampleBatch ``edge``): the fast path's struct, and its row in ``devices``.

The struct is the contract's ``EdgeState`` restated for msgspec, bound for bound (the fast path only ever
accepts what the contract model accepts: ``tests/test_parse.py`` holds the two to that); the columns are
migration 0009's, named ``edge_`` + the field.
"""

from datetime import datetime
from typing import Annotated, Final

import msgspec

from p1_contracts.models import EdgeState

_COUNT: Final = msgspec.Meta(ge=0, le=1_000_000_000, multiple_of=1)
_TOTAL: Final = msgspec.Meta(ge=0, le=1_000_000_000_000, multiple_of=1)
_SECONDS: Final = msgspec.Meta(ge=0, le=3_200_000_000)
_VERSION: Final = msgspec.Meta(pattern=r"\A[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}\Z")

# The report's fields in column order (devices.edge_<name>), after edge_reported_at.
EDGE_FIELDS: Final = tuple(EdgeState.model_fields)
EDGE_COLUMNS: Final = ("edge_reported_at", *(f"edge_{name}" for name in EDGE_FIELDS))
# Their PostgreSQL types, in the same order (migration 0009).
EDGE_TYPES: Final = ("timestamptz", "bigint", "float8", "bigint", "bigint", "bigint", "text", "float8")
_WHOLE: Final = frozenset({"spool_depth", "quarantined", "spool_dropped", "meter_errors"})


class EdgeIn(msgspec.Struct, gc=False):
    """The contract's EdgeState for the fast path; unknown fields are ignored, as the contract says."""

    spool_depth: Annotated[float, _COUNT]
    spool_oldest_age_s: Annotated[float, _SECONDS]
    quarantined: Annotated[float, _COUNT]
    spool_dropped: Annotated[float, _TOTAL]
    meter_errors: Annotated[float, _TOTAL]
    version: Annotated[str, _VERSION]
    uptime_s: Annotated[float, _SECONDS]


def edge_state(edge: EdgeIn | None) -> EdgeState | None:
    """The fast path's struct as the contract model (valid already: not validated again)."""
    if edge is None:
        return None
    return EdgeState.model_construct(**{name: getattr(edge, name) for name in EDGE_FIELDS})


def edge_members(edge: EdgeState | None) -> int:
    """Members the report adds to the body (``jsonkeys``): the ``edge`` key and its non-null values."""
    if edge is None:
        return 0
    return 1 + sum(getattr(edge, name) is not None for name in EDGE_FIELDS)


def edge_row(edge: EdgeState, now: datetime) -> tuple[object, ...]:
    """The values of EDGE_COLUMNS for a report stored at ``now``."""
    values = (getattr(edge, name) for name in EDGE_FIELDS)
    return (now, *(int(v) if name in _WHOLE else v for name, v in zip(EDGE_FIELDS, values, strict=True)))
