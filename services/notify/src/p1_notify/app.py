"""The notify application: the follower and the config watch run as long as the app serves; the HTTP
side is the service shell's /healthz, /readyz (PostgreSQL answers) and /metrics."""

import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from p1_config.logging import configured
from p1_config.redact import describe_error
from p1_notify.config import MqttConfig
from p1_notify.config_watch import ConfigWatch
from p1_notify.delivery import Delivery
from p1_notify.follower import Follower
from p1_notify.notifier import Notifier
from p1_notify.publish import StatePublisher
from p1_notify.quarter import Quarters
from p1_notify.settings import NotifySettings
from p1_notify.store import Store
from p1_servicekit.app import create_db_service_app
from p1_servicekit.redis_guard import RedisGuard

SERVICE: Final = "notify"
# Seconds a shutdown waits for notifications being delivered.
DRAIN_S: Final = 5.0
log = logging.getLogger(__name__)


def _publisher(mqtt: MqttConfig | None, registry: CollectorRegistry) -> StatePublisher | None:
    """Home Assistant's publisher when the config has ``mqtt:`` (imported only then)."""
    if mqtt is None:
        return None
    try:
        module = importlib.import_module("p1_notify.homeassistant")
        publisher: StatePublisher = module.create_publisher(mqtt, registry)
    except Exception as exc:  # the publisher is optional: warnings go on without it
        log.error("no Home Assistant publisher", extra={"error": describe_error(exc)})
        return None
    return publisher


class _Later:
    """The follower's task: built by ``on_start`` (it needs the pool), run as a background task."""

    work: Callable[[], Coroutine[Any, Any, None]] | None = None

    async def __call__(self) -> None:
        assert self.work is not None, "on_start runs before the background tasks"
        await self.work()


def create_app(settings: NotifySettings) -> FastAPI:
    registry = CollectorRegistry()
    watch = ConfigWatch(settings.notify_config, settings.notify_config_poll_s, registry)
    delivery = Delivery(
        registry, settings.notify_attempts, settings.notify_backoff_s, settings.notify_send_timeout_s
    )
    follow = _Later()

    def on_start(app: FastAPI, pool: "asyncpg.Pool[asyncpg.Record]", redis: RedisGuard) -> None:
        publisher = _publisher(watch.current.mqtt, registry)
        notifier = Notifier(
            config=watch.get,
            quarters=Quarters(
                pool,
                ZoneInfo(settings.notify_tz),
                settings.grid_operator,
                settings.capacity_price_eur_per_kw_year,
                settings.db_acquire_timeout_s,
                registry,
            ),
            store=Store(pool, settings.db_acquire_timeout_s),
            delivery=delivery,
            tz=ZoneInfo(settings.notify_tz),
            registry=registry,
            publisher=lambda: publisher,
        )
        follower = Follower(
            notifier=notifier,
            devices=lambda: watch.current.devices.keys(),
            pool=pool,
            redis_url=settings.redis_url,
            pg_poll_s=settings.notify_pg_poll_s,
            redis_retry_s=settings.notify_redis_retry_s,
            timeout_s=settings.db_acquire_timeout_s,
            registry=registry,
        )

        async def run() -> None:
            if publisher is not None:
                await publisher.start()
            try:
                await follower.run()
            finally:
                await notifier.drain(DRAIN_S)
                if publisher is not None:
                    await publisher.stop()

        follow.work = run

    return create_db_service_app(
        service=SERVICE,
        tag=SERVICE,
        settings=settings,
        registry=registry,
        on_start=on_start,
        background=[watch.run, follow],
    )


def app_from_env() -> FastAPI:
    """The factory uvicorn calls: settings read once, at start-up."""
    return create_app(configured(NotifySettings))
