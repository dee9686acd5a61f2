"""Redis as an optional helper: every call bounded by a short timeout, failures counted, logged once
per outage, and answered with ``None`` so that callers fall back to PostgreSQL."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError

from p1_config.redact import describe_error

log = logging.getLogger(__name__)
T = TypeVar("T")


class RedisGuard:
    def __init__(
        self, client: Redis | None, registry: CollectorRegistry, service: str, timeout_s: float
    ) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._down = False
        self._errors = Counter(
            "p1_redis_errors",
            "Redis calls that failed or timed out.",
            ["service"],
            registry=registry,
        ).labels(service)
        self._up = Gauge(
            "p1_redis_up",
            "1 when the last Redis call succeeded.",
            ["service"],
            registry=registry,
            multiprocess_mode="livemin",  # with several workers: 0 when any live one failed
        ).labels(service)
        self._up.set(1 if client is not None else 0)

    @property
    def enabled(self) -> bool:
        return self.client is not None

    async def run(self, op: Callable[[Redis], Awaitable[T]]) -> T | None:
        if self.client is None:
            return None
        try:
            result = await asyncio.wait_for(op(self.client), self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self._errors.inc()
            self._up.set(0)
            if not self._down:
                self._down = True
                log.warning(
                    "redis unavailable; falling back to PostgreSQL", extra={"error": describe_error(exc)}
                )
            return None
        if self._down:
            self._down = False
            log.info("redis available again")
        self._up.set(1)
        return result

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
