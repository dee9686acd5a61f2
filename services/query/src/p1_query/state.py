"""What every handler works with: the app's parts (``QueryState``) and the caller's identity."""

import time
from dataclasses import dataclass, field
from typing import cast

from starlette.requests import Request

from p1_query.auth import Reader, authenticate
from p1_query.cache import ResponseCache
from p1_query.db import Acquire, DbTimer
from p1_query.export import PageReader
from p1_query.groups import DailyZone
from p1_query.live import LiveHub, LiveSlots
from p1_query.live_quarter import QuarterEvents
from p1_query.realtime import LatestReadings
from p1_query.session import COOKIE, SessionSigner
from p1_query.settings import QuerySettings
from p1_query.signin_limit import SigninLimiter
from p1_query.streaming import ExportSlots
from p1_servicekit.redis_guard import RedisGuard
from p1_servicekit.tokens import TokenLookup


@dataclass
class QueryState:
    settings: QuerySettings
    tokens: TokenLookup
    acquire: Acquire
    redis: RedisGuard
    cache: ResponseCache
    db: DbTimer
    latest: LatestReadings
    exports: ExportSlots
    export_reads: PageReader
    sessions: SessionSigner
    signins: SigninLimiter
    live: LiveHub
    live_slots: LiveSlots
    daily: DailyZone = field(default_factory=DailyZone)
    # The capacity/now JSON of live streams' ``quarter`` events; None: no such events.
    quarter: QuarterEvents | None = None


# The only methods a session cookie is taken on (p1_query.session: with SameSite=Strict, no CSRF).
COOKIE_METHODS = frozenset({"GET", "HEAD"})


def caller(request: Request) -> tuple[QueryState, Reader]:
    """The app's state and the authenticated reader: the bearer token, else (GET only) the session
    cookie. A plain call, not a FastAPI dependency: solving dependencies costs more than the whole
    realtime answer (measured: ~0.5 ms of ~1 ms in-process)."""
    state = cast(QueryState, request.app.state.query)
    authorization = request.headers.get("authorization")
    cookie = None
    if authorization is None and request.method in COOKIE_METHODS:
        cookie = request.cookies.get(COOKIE)
    return state, authenticate(state.tokens, authorization, cookie, state.sessions)


def server_timing(started: float) -> str:
    """The handler's own time (``Server-Timing``), which ``bench/query.py`` reads."""
    return f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
