"""PostgreSQL pool and Redis client with the timeouts the services rely on."""

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import asyncpg
from redis.asyncio import Redis

from p1_config.redact import describe_error, redact
from p1_servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)


async def open_pool(
    settings: ServiceSettings,
    server_settings: Mapping[str, str] | None = None,
    init: "Callable[[asyncpg.Connection[asyncpg.Record]], Coroutine[Any, Any, None]] | None" = None,
) -> "asyncpg.Pool[asyncpg.Record]":
    """A pool that exists even while the database is down, so the service starts and reports
    not-ready, then recovers by itself: connections are (re)made on acquire.

    ``server_settings`` are session settings of every connection (e.g. ``{"jit": "off"}``); ``init``
    runs once on every new connection (e.g. to create a session's temporary table)."""

    async def create(min_size: int) -> "asyncpg.Pool[asyncpg.Record]":
        return await asyncpg.create_pool(
            settings.database_url,
            min_size=min_size,
            max_size=settings.db_pool_max,
            command_timeout=settings.db_command_timeout_s,
            max_inactive_connection_lifetime=300.0,
            server_settings=dict(server_settings or {}),
            init=init,
        )

    try:
        return await create(settings.db_pool_min)
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning(
            "database unreachable at start-up; connecting on demand",
            extra={"database": redact(settings.database_url), "error": describe_error(exc)},
        )
        return await create(0)


async def pg_ready(pool: "asyncpg.Pool[asyncpg.Record]", timeout_s: float) -> bool:
    async with pool.acquire(timeout=timeout_s) as conn:
        return bool(await conn.fetchval("SELECT true", timeout=timeout_s))


def open_redis(settings: ServiceSettings) -> Redis | None:
    if not settings.redis_url:
        return None
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
        retry_on_timeout=False,
    )
