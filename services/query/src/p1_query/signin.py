"""``POST /v1/session`` and ``DELETE /v1/session``: a read token exchanged for a session cookie, and the
cookie cleared (``p1_query.session`` says what the cookie is and when it is taken)."""

from typing import cast

from starlette.requests import Request
from starlette.responses import Response

from p1_contracts.models import SessionRequest
from p1_query.session import clear_cookie_header, set_cookie_header
from p1_query.state import QueryState
from p1_servicekit.errors import TooManyRequests, Unauthorized
from p1_servicekit.tokens import fingerprint


def _secure(request: Request) -> bool:
    # uvicorn has already applied X-Forwarded-Proto when the peer is a trusted proxy (FORWARDED_ALLOW_IPS).
    return request.url.scheme == "https"


def _client(request: Request) -> str:
    # The peer, or the X-Forwarded-For address a trusted proxy gave (uvicorn's proxy headers).
    return request.client.host if request.client is not None else "unknown"


async def create_session(request: Request, body: SessionRequest) -> Response:
    state = cast(QueryState, request.app.state.query)
    client = _client(request)
    wait_s = state.signins.wait_s(client)
    if wait_s:
        raise TooManyRequests(wait_s, "Too many bad tokens from this address; retry later.")
    if state.tokens.scope_of(body.token) is None:
        state.signins.failed(client)
        raise Unauthorized("The token is not valid.")
    value = state.sessions.make(fingerprint(body.token))
    cookie = set_cookie_header(value, state.sessions.max_age_s, _secure(request))
    return Response(status_code=204, headers={"Set-Cookie": cookie, "Cache-Control": "no-store"})


async def delete_session(request: Request) -> Response:
    cookie = clear_cookie_header(_secure(request))
    return Response(status_code=204, headers={"Set-Cookie": cookie, "Cache-Control": "no-store"})
