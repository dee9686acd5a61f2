"""Errors as types. Each maps to one HTTP status in ``problems.install_problem_handlers``.

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class FieldError:
    loc: tuple[str | int, ...]
    msg: str
    type: str


@dataclass
class ServiceError(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"

    detail: str
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"


class BadRequest(ServiceError):
    status = 400
    title = "Bad Request"


class Unauthorized(ServiceError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str = "A valid bearer token is required.") -> None:
        super().__init__(detail, {"WWW-Authenticate": "Bearer"})


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"


class NotFound(ServiceError):
    status = 404
    title = "Not Found"


class RequestTimeout(ServiceError):
    status = 408
    title = "Request Timeout"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, {"Connection": "close"})


class PayloadTooLarge(ServiceError):
    status = 413
    title = "Content Too Large"


class UnsupportedMediaType(ServiceError):
    status = 415
    title = "Unsupported Media Type"


class Unprocessable(ServiceError):
    status = 422
    title = "Unprocessable Content"

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        self.errors = tuple(errors)
        summary = "; ".join(f"{_dotted(e.loc)}: {e.msg}" for e in self.errors[:5])
        if len(self.errors) > 5:
            summary += f"; and {len(self.errors) - 5} more"
        super().__init__(detail or summary or "Invalid input.")


class TooManyRequests(ServiceError):
    status = 429
    title = "Too Many Requests"

    def __init__(self, retry_after_s: int, detail: str = "Rate limit exceeded; retry later.") -> None:
        super().__init__(detail, {"Retry-After": str(max(1, retry_after_s))})


class ServiceUnavailable(ServiceError):
    status = 503
    title = "Service Unavailable"

    def __init__(self, retry_after_s: int, detail: str = "The database is unavailable; retry later.") -> None:
        super().__init__(detail, {"Retry-After": str(max(1, retry_after_s))})


class RequestAborted(ServiceUnavailable):
    """The body was cut off before its end. Usually nobody hears the answer, but a server that is
    shutting down says so (the protocol answers for it), and either way it is no server error."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(retry_after_s, "The request body was cut off before its end; retry later.")


def _dotted(loc: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in loc) or "body"
