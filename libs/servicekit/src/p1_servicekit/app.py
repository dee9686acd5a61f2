"""The FastAPI application shell both services build on: errors, metrics, health and the spec."""

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from .health import Probe, health_router
from .metrics import MetricsMiddleware, RequestMetrics, mark_worker_exited, metrics_router
from .problems import install_problem_handlers
from .spec import load_spec, spec_for_tag

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_service_app(
    *,
    service: str,
    tag: str,
    lifespan: Lifespan,
    probes: Mapping[str, Probe],
    registry: CollectorRegistry,
    retry_after_s: int = 5,
) -> FastAPI:
    """An app serving ``/healthz``, ``/readyz``, ``/metrics`` and its tag's part of openapi.yaml.

    FastAPI's own schema generation is off: the canonical spec is the contract, not the code.
    """

    @asynccontextmanager
    async def lifespan_then_exit_metrics(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app):
            yield
        mark_worker_exited()

    app = FastAPI(
        title=f"p1-telemetry {service}",
        lifespan=lifespan_then_exit_metrics,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app, retry_after_s)
    app.add_middleware(MetricsMiddleware, metrics=RequestMetrics(registry, service))
    app.include_router(health_router(probes))
    app.include_router(metrics_router(registry))
    served_spec: dict[str, Any] = spec_for_tag(load_spec(), tag)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(served_spec)

    return app
