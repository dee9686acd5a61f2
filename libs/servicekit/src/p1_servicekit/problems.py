"""The one place where errors become HTTP answers: RFC 9457 problem+json, never a stack trace."""

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Final

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from p1_config.redact import describe_error
from p1_contracts.models import Problem, ProblemError
from p1_servicekit.errors import FieldError, ServiceError, ServiceUnavailable, Unprocessable, title_of

PROBLEM_JSON: Final = "application/problem+json"
# The detail of every 500, whoever answers it (the app's last handler, or the HTTP protocol).
UNEXPECTED: Final = "An unexpected error occurred; it has been logged."
log = logging.getLogger(__name__)

# Failures that mean "the database cannot serve now" rather than "this request is wrong".
DB_UNAVAILABLE: Final[tuple[type[Exception], ...]] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.QueryCanceledError,
    # The server refuses us (wrong password, database missing): no request of a client can fix that,
    # and the operator sees it in /readyz and the log, so it is a 503 too, not a 500.
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
)


def problem_json(
    status: int, detail: str, *, title: str | None = None, errors: Sequence[FieldError] = ()
) -> bytes:
    """The problem+json body of an answer (also written by the HTTP protocol itself, before any app)."""
    body = Problem(
        type="about:blank",
        title=title or title_of(status),
        status=status,
        detail=detail,
        errors=[ProblemError(loc=list(e.loc), msg=e.msg, type=e.type) for e in errors] or None,
    )
    return body.model_dump_json(exclude_none=True).encode()


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        content=problem_json(status, detail, title=title, errors=errors),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def field_errors(errors: Sequence[Any], prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Pydantic's error dicts → our FieldErrors, with messages that never echo large inputs."""
    out: list[FieldError] = []
    for err in errors:
        loc = prefix + tuple(err.get("loc", ()))
        out.append(FieldError(loc=loc, msg=str(err.get("msg", "invalid")), type=str(err.get("type"))))
    return out


def install_problem_handlers(app: FastAPI, retry_after_s: int = 5) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> Response:
        return _service_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> Response:
        errors = field_errors(exc.errors())
        return _service_error_response(Unprocessable(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(sorted(_allowed(app, request)))
        detail = exc.detail if isinstance(exc.detail, str) else title_of(exc.status_code)
        return problem_response(exc.status_code, detail, headers=headers)

    async def _db_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable", extra={"path": request.url.path, "error": describe_error(exc)})
        return _service_error_response(ServiceUnavailable(retry_after_s))

    # Registered per class (not under Exception) so they are answered inside the app and never
    # reach the server error middleware, which would log a traceback for an expected outage.
    for cls in DB_UNAVAILABLE:
        app.add_exception_handler(cls, _db_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
        return problem_response(500, UNEXPECTED)


def _allowed(app: FastAPI, request: Request) -> set[str]:
    """Every method some route serves at this path: Starlette's 405 names only the first route's, and a
    path may have one route per method (POST and DELETE /v1/session)."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def _service_error_response(exc: ServiceError) -> Response:
    errors = exc.errors if isinstance(exc, Unprocessable) else ()
    return problem_response(exc.status, exc.detail, title=exc.title, errors=errors, headers=exc.headers)
