"""The query application: ``create_app(settings)`` builds everything; nothing happens at import."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from p1_servicekit.app import create_service_app
from p1_servicekit.db import open_pool, open_redis, pg_ready
from p1_servicekit.logging import configure_logging
from p1_servicekit.redis_guard import RedisGuard
from p1_servicekit.tokens import parse_read_tokens

from .cache import ResponseCache
from .realtime import LatestReadings
from .routes import QueryState, add_query_routes
from .settings import QuerySettings
from .store import DbTimer

SERVICE = "query"


def create_app(settings: QuerySettings) -> FastAPI:
    registry = CollectorRegistry()
    tokens = parse_read_tokens(settings.read_tokens)
    db = DbTimer(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(settings)
        redis = RedisGuard(open_redis(settings), registry, SERVICE, settings.redis_timeout_s)
        app.state.pool = pool
        app.state.redis = redis
        app.state.query = QueryState(
            settings=settings,
            tokens=tokens,
            pool=pool,
            redis=redis,
            cache=ResponseCache(redis, registry),
            db=db,
            latest=LatestReadings(
                redis,
                lambda: pool.acquire(timeout=settings.db_acquire_timeout_s),
                db,
                settings.realtime_memo_s,
            ),
        )
        try:
            yield
        finally:
            await redis.close()
            await pool.close()

    async def postgres() -> bool:
        return await pg_ready(app.state.pool, settings.db_acquire_timeout_s)

    app = create_service_app(
        service=SERVICE,
        tag="query",
        lifespan=lifespan,
        probes={"postgres": postgres},
        registry=registry,
        retry_after_s=settings.retry_after_s,
    )
    app.state.settings = settings
    add_query_routes(app)
    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn calls in each worker: settings read once, at that worker's start."""
    settings = QuerySettings()  # required fields come from the environment
    configure_logging(settings.log_level)
    return create_app(settings)
