"""The query application: ``create_app(settings)`` builds everything; nothing happens at import."""

import asyncio
from functools import partial

import asyncpg
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from p1_config.logging import configured
from p1_query.cache import ResponseCache
from p1_query.capacity_now import capacity_now_json
from p1_query.db import DbTimer
from p1_query.export import PageReader
from p1_query.live import TICK_S, LiveHub, LiveSlots
from p1_query.live_quarter import QuarterEvents
from p1_query.price_settle import PriceSettler
from p1_query.realtime import LatestReadings
from p1_query.routes import add_query_routes
from p1_query.session import SessionSigner
from p1_query.settings import QuerySettings
from p1_query.signin_limit import SigninLimiter
from p1_query.state import QueryState
from p1_query.streaming import ExportSlots, install_log_filter
from p1_query.web import load as load_web
from p1_query.web import web_routes
from p1_query.zones import load as load_zones
from p1_query.zones import parse_tz
from p1_servicekit.app import create_db_service_app
from p1_servicekit.redis_guard import RedisGuard
from p1_servicekit.token_reload import token_source, watchers
from p1_servicekit.tokens import READ_TOKENS

SERVICE = "query"


def create_app(settings: QuerySettings) -> FastAPI:
    load_zones()  # the contract's zones from the pinned tzdata, or no start at all
    registry = CollectorRegistry()
    tokens = token_source(READ_TOKENS, settings.read_tokens, settings.read_tokens_file, registry, SERVICE)
    db = DbTimer(registry)
    exports = ExportSlots(
        settings.export_max_per_token, settings.export_max_per_process, settings.retry_after_s, registry
    )
    install_log_filter()
    sessions = SessionSigner(settings.session_secret, settings.session_max_age_s)
    signins = SigninLimiter(settings.signin_burst, settings.signin_per_minute, settings.signin_max_clients)
    web = load_web()
    settler = PriceSettler(settings.price_sums_interval_s, registry)
    hub = LiveHub(settings.redis_url, settings.redis_timeout_s)
    live_slots = LiveSlots(
        settings.live_max_per_token, settings.live_max_per_process, settings.retry_after_s, registry
    )

    def on_start(app: FastAPI, pool: "asyncpg.Pool[asyncpg.Record]", redis: RedisGuard) -> None:
        def acquire() -> "asyncpg.pool.PoolAcquireContext":
            # A bounded wait: a saturated or unreachable database becomes a 503, not a hung request.
            return pool.acquire(timeout=settings.db_acquire_timeout_s)

        settler.attach(acquire)
        app.state.query = state = QueryState(
            settings=settings,
            tokens=tokens,
            acquire=acquire,
            redis=redis,
            cache=ResponseCache(redis, registry, settings.cache_budget_bytes),
            db=db,
            latest=LatestReadings(redis, acquire, db, settings.realtime_memo_s),
            exports=exports,
            # Half the pool at most for exports (PageReader), the rest for everything else.
            export_reads=PageReader(
                acquire,
                asyncio.Semaphore(max(1, settings.db_pool_max // 2)),
                db,
                settings.export_statement_timeout_s,
            ),
            sessions=sessions,
            signins=signins,
            live=hub,
            live_slots=live_slots,
        )

        async def quarter_json(device_id: str, tz: str) -> bytes:
            return await capacity_now_json(state, device_id, parse_tz(tz), tz, None)

        state.quarter = QuarterEvents(quarter_json, max(1, settings.db_pool_max // 4))

    app = create_db_service_app(
        service=SERVICE,
        tag="query",
        settings=settings,
        registry=registry,
        on_start=on_start,
        # Every statement here is short: PostgreSQL's JIT compiled the dynamic prices' year of quarters
        # (costs_sql) for ~1 s, more than the statement ran (its estimate from generate_series is huge).
        server_settings={"jit": "off"},
        background=[
            *watchers(tokens),
            hub.run,
            settler.run,
            partial(hub.tick, TICK_S, settings.live_revoke_check_s),
        ],
    )
    add_query_routes(app)
    app.router.routes.extend(web_routes(web))  # after the API's: none of them shadows an API path
    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn calls in each worker: settings read once, at that worker's start."""
    return create_app(configured(QuerySettings))
