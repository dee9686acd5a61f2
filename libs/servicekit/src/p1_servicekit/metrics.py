"""Prometheus request metrics (count and latency by route template and status) and ``/metrics``."""

import os
import time
from collections.abc import Awaitable, Callable
from typing import Final

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.exposition import generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class RequestMetrics:
    """The HTTP metrics of one service, on the service's own registry."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.requests = Counter(
            "p1_http_requests",
            "HTTP requests by route template, method and status.",
            ["service", "route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "p1_http_request_duration_seconds",
            "HTTP request latency by route template and method, until the last body byte.",
            ["service", "route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class MetricsMiddleware:
    """Pure ASGI middleware: it does not buffer streamed bodies (exports stay constant-memory)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            counter, latency = self._children(_route_template(scope), scope["method"], status)
            counter.inc()
            latency.observe(time.perf_counter() - started)

    def _children(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The labelled series of one (route, method, status), looked up once: ``labels()`` takes a
        lock and builds a key on every call, a measurable share of a realtime answer."""
        key = (route, method, status)
        found = self._series.get(key)
        if found is None:
            m = self.metrics
            found = (
                m.requests.labels(m.service, route, method, str(status)),
                m.latency.labels(m.service, route, method),
            )
            # Bounded: routes are templates (or "<unmatched>"), methods and statuses few.
            self._series[key] = found
        return found


def _route_template(scope: Scope) -> str:
    # The template, never the concrete path: labels stay bounded whatever clients send.
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "<unmatched>"))
    return "<unmatched>"


MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess mode, when the workers of one server share
    their metrics (``serve --workers N`` sets it up); None for a single process."""
    return os.environ.get(MULTIPROC_ENV) or None


def mark_worker_exited() -> None:
    """Drops this worker's live gauges from the shared directory (counters and histograms keep adding)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


# More series read at scrape time (asynchronously, e.g. from the database), in the text format: they come
# from a shared source, not from this worker's memory, so they are whole whichever worker is scraped.
ScrapeExtra = Callable[[FastAPI], Awaitable[bytes]]


def metrics_router(registry: CollectorRegistry, more: ScrapeExtra | None = None) -> APIRouter:
    """``/metrics``: this process's registry, or, with several workers, all workers merged — a scrape
    reaches one worker, which must not answer with its own share only — then ``more``'s series."""
    router = APIRouter()
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]

    @router.get("/metrics", include_in_schema=False, responses={200: {}})
    async def metrics(request: Request) -> Response:
        body = generate_latest(registry)
        if more is not None:
            body += await more(request.app)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
