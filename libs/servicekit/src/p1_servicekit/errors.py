"""Errors as types, and the title of every HTTP status we answer with (``TITLES``). Each error maps to
one HTTP status in ``problems.install_problem_handlers``.

ServiceError
├── BadRequest            400  body is not JSON / not gzip
├── Unauthorized          401  no or unknown bearer token
├── Forbidden             403  token of another device
├── NotFound              404  unknown device, or one outside the token's scope
├── RequestTimeout        408  the body did not arrive in time
├── PayloadTooLarge       413
├── UnsupportedMediaType  415
├── Unprocessable         422  invalid input; ``errors`` names each field
├── TooManyRequests       429  with Retry-After
└── ServiceUnavailable    503  with Retry-After (database down or overloaded)
    └── RequestAborted    503  the body stopped arriving (client gone, server shutting down)
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Final

# The title of every status an answer of ours may have (RFC 9110 names): the one table, read by the
# error classes below, by the problem handlers and by the HTTP protocol's own answers.
TITLES: Final[Mapping[int, str]] = MappingProxyType(
    {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        406: "Not Acceptable",
        408: "Request Timeout",
        413: "Content Too Large",
        415: "Unsupported Media Type",
        422: "Unprocessable Content",
        429: "Too Many Requests",
        431: "Request Header Fields Too Large",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
)


def title_of(status: int) -> str:
    """The problem title of ``status``."""
    return TITLES.get(status, "Error")


@dataclass(frozen=True)
class FieldError:
    """One invalid input: where (``loc``, as pydantic gives it), what is wrong, and pydantic's type."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


@dataclass
class ServiceError(Exception):
    """Base of the errors a request can end in; ``status`` picks the answer, its title comes from
    ``TITLES``."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = TITLES[500]

    detail: str
    headers: dict[str, str] = field(default_factory=dict)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.title = TITLES[cls.status]

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"


class BadRequest(ServiceError):
    """The body cannot be read at all: not JSON, not gzip."""

    status = 400


class Unauthorized(ServiceError):
    """No bearer token, or one that is not known."""

    status = 401

    def __init__(self, detail: str = "A valid bearer token is required.") -> None:
        super().__init__(detail, {"WWW-Authenticate": "Bearer"})


class Forbidden(ServiceError):
    """A known token acting for a device that is not its own."""

    status = 403


class NotFound(ServiceError):
    """An unknown device, or one outside the token's scope (the two are not told apart)."""

    status = 404


class RequestTimeout(ServiceError):
    """The body did not arrive in time; the connection is closed."""

    status = 408

    def __init__(self, detail: str) -> None:
        super().__init__(detail, {"Connection": "close"})


class PayloadTooLarge(ServiceError):
    """The body is larger than allowed, as sent or after gzip."""

    status = 413


class UnsupportedMediaType(ServiceError):
    """A content type or encoding the route does not take."""

    status = 415


class Unprocessable(ServiceError):
    """Invalid input; ``errors`` names each field that is wrong."""

    status = 422

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        self.errors = tuple(errors)
        summary = "; ".join(f"{_dotted(e.loc)}: {e.msg}" for e in self.errors[:5])
        if len(self.errors) > 5:
            summary += f"; and {len(self.errors) - 5} more"
        super().__init__(detail or summary or "Invalid input.")


class _RetryLater(ServiceError):
    """Base of the answers that say when to come back (Retry-After, at least 1 s)."""

    default_detail: ClassVar[str]

    def __init__(self, retry_after_s: int, detail: str | None = None) -> None:
        super().__init__(detail or self.default_detail, {"Retry-After": str(max(1, retry_after_s))})


class TooManyRequests(_RetryLater):
    """Over a rate or concurrency limit."""

    status = 429
    default_detail = "Rate limit exceeded; retry later."


class ServiceUnavailable(_RetryLater):
    """The database is down or overloaded."""

    status = 503
    default_detail = "The database is unavailable; retry later."


class RequestAborted(ServiceUnavailable):
    """The body was cut off before its end. Usually nobody hears the answer, but a server that is
    shutting down says so (the protocol answers for it), and either way it is no server error."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(retry_after_s, "The request body was cut off before its end; retry later.")


def _dotted(loc: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in loc) or "body"
