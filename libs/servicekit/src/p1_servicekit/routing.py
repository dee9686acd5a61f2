"""A route for hot endpoints that validate their own input: Starlette's ``Route`` plus the status codes
that the route-vs-spec check reads from FastAPI's ``APIRoute``.

Why: FastAPI's per-request machinery (parameter solving, dependency scopes, its route matching) costs
more than a small answer itself. Measured in-process (ASGI called directly, ``bench/query.py``'s
scope): a constant answer through an ``APIRoute`` ~55 µs, through this route in the same FastAPI app
~18 µs. Exceptions raised by the endpoint still reach the app's exception handlers (problem+json) and
the request metrics middleware, which wrap the router.
"""

from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class PlainRoute(Route):
    def __init__(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        *,
        methods: Iterable[str],
        responses: Iterable[int | str],
        status_code: int = 200,
    ) -> None:
        super().__init__(path, endpoint, methods=list(methods))
        self.status_code = status_code
        self.responses = frozenset(int(s) for s in responses)
