"""The connection type every statement runs on, and the timing of every statement into
``p1_query_db_seconds`` by operation."""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

import asyncpg
from prometheus_client import CollectorRegistry, Histogram

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
# A pooled connection with a bounded wait (DB_ACQUIRE_TIMEOUT_S): a saturated or unreachable database
# becomes a 503, not a hung request.
Acquire = Callable[[], "asyncpg.pool.PoolAcquireContext"]

DB_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class DbTimer:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._hist = Histogram(
            "p1_query_db_seconds",
            "PostgreSQL time of the query service by operation.",
            ["operation"],
            buckets=DB_BUCKETS,
            registry=registry,
        )

    @asynccontextmanager
    async def time(self, operation: str) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._hist.labels(operation).observe(time.perf_counter() - started)
