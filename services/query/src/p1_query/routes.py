"""The query operations of openapi.yaml (tag ``query``): which handler serves which path, with the
status codes the spec documents (a test holds them equal, both ways)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI

from p1_query import handlers
from p1_servicekit.routing import PlainRoute

Responses = dict[int | str, dict[str, Any]]
_ERRORS: Final[Responses] = {
    401: {"description": "no or unknown token"},
    404: {"description": "unknown device, or outside the token's scope"},
    422: {"description": "invalid input"},
    503: {"description": "database unavailable"},
}
_LIST: Final[Responses] = {status: said for status, said in _ERRORS.items() if status in (401, 503)}
_CACHED: Final[Responses] = {304: {"description": "not modified"}, **_ERRORS}
_EXPORT: Final[Responses] = {429: {"description": "too many exports"}, **_ERRORS}


@dataclass(frozen=True)
class Operation:
    path: str
    handler: Callable[..., Awaitable[Any]]
    responses: Responses
    # A plain Starlette route (servicekit.routing), matched first: the hottest route checks its path
    # parameter itself, so FastAPI's parameter machinery has nothing to do for it.
    plain: bool = False


OPERATIONS: Final = (
    Operation("/v1/devices/{device_id}/realtime", handlers.realtime, _ERRORS, plain=True),
    Operation("/v1/devices", handlers.devices, _LIST),
    Operation("/v1/devices/{device_id}/series", handlers.series, _CACHED),
    Operation("/v1/devices/{device_id}/capacity", handlers.capacity, _CACHED),
    Operation("/v1/devices/{device_id}/export", handlers.export, _EXPORT),
    Operation("/v1/devices/{device_id}/capacity/now", handlers.capacity_now, _ERRORS),
    Operation("/v1/devices/{device_id}/notifications", handlers.notifications, _ERRORS),
)


def add_query_routes(app: FastAPI) -> None:
    """Registers the operations on the app itself: an included APIRouter becomes a branch that
    FastAPI matches a second time on every request (measured: a sixth of a realtime answer)."""
    for operation in OPERATIONS:
        path, handler, responses = operation.path, operation.handler, operation.responses
        if operation.plain:
            app.router.routes.insert(0, PlainRoute(path, handler, methods=["GET"], responses=responses))
        else:
            app.add_api_route(path, handler, methods=["GET"], responses=responses)
