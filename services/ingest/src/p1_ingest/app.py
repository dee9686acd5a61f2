"""The ingest application: ``create_app(settings)`` builds everything; nothing happens at import."""

import asyncpg
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from p1_config.logging import configured
from p1_ingest.edgemetrics import EdgeReportMetrics
from p1_ingest.latest import LatestWriter
from p1_ingest.metrics import IngestMetrics
from p1_ingest.routes import Ingestor, ingest_router
from p1_ingest.settings import IngestSettings
from p1_ingest.store import power_settings, prepare_connection
from p1_servicekit.app import create_db_service_app
from p1_servicekit.redis_guard import RedisGuard
from p1_servicekit.token_reload import token_source, watchers
from p1_servicekit.tokens import DEVICE_TOKENS

SERVICE = "ingest"


def create_app(settings: IngestSettings) -> FastAPI:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry, SERVICE)
    tokens = token_source(
        DEVICE_TOKENS, settings.device_tokens, settings.device_tokens_file, registry, SERVICE
    )

    reports = EdgeReportMetrics(tokens, metrics, settings.db_acquire_timeout_s)

    def on_start(app: FastAPI, pool: "asyncpg.Pool[asyncpg.Record]", redis: RedisGuard) -> None:
        app.state.ingestor = Ingestor(settings, tokens, pool, LatestWriter(redis), metrics)

    app = create_db_service_app(
        service=SERVICE,
        tag="ingest",
        settings=settings,
        registry=registry,
        on_start=on_start,
        # JIT compiling the insert-and-rollup statement costs more than running it (measured: 30% of
        # the write time on 1,000-reading batches); ingest runs only short, planned statements.
        # MAX_POWER_W travels with the connection to the write path (store.POWER_SETTING).
        server_settings={"jit": "off", **power_settings(settings.limits)},
        init=prepare_connection,
        background=watchers(tokens),
        metrics_extra=reports.scrape,
    )
    app.include_router(ingest_router())
    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn calls in each worker: settings read once, at that worker's start."""
    return create_app(configured(IngestSettings))
