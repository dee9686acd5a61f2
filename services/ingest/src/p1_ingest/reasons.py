"""Why ingest refused a batch: the one list of reasons (a bounded label of the reject metrics), by the
error type that refused it. The metrics pre-create every reason, so each is a series from the start."""

from collections.abc import Mapping
from typing import Final

from p1_servicekit.errors import (
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    RequestAborted,
    RequestTimeout,
    ServiceError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
)

REASON_OF: Final[Mapping[type[ServiceError], str]] = {
    Unauthorized: "unauthorized",
    Forbidden: "forbidden",
    PayloadTooLarge: "too_large",
    RequestTimeout: "timeout",
    UnsupportedMediaType: "unsupported_media_type",
    BadRequest: "bad_request",
    Unprocessable: "invalid",
    TooManyRequests: "too_many_requests",
    RequestAborted: "aborted",
    ServiceUnavailable: "unavailable",  # also the database's outages, which are not ServiceErrors
    ServiceError: "other",  # a refusal of a kind added later, until it gets its own reason
}
REASONS: Final = tuple(dict.fromkeys(REASON_OF.values()))
UNAVAILABLE: Final = REASON_OF[ServiceUnavailable]


def reason_of(exc: ServiceError) -> str:
    """The reason of the nearest class of ``exc`` that has one (``other`` at worst)."""
    return next(REASON_OF[cls] for cls in type(exc).__mro__ if cls in REASON_OF)
