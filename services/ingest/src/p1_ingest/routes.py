"""``POST /v1/samples``: auth → content headers → body within limits → whole-batch validation →
one transaction → 200 after the commit → Redis (best effort, bounded)."""

import time
from collections import Counter as Tally
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import Response

from p1_ingest.body import check_content_headers, inflate, read_body
from p1_ingest.latest import LatestWriter
from p1_ingest.metrics import IngestMetrics
from p1_ingest.parse import parse_batch
from p1_ingest.ratelimit import RateLimiter
from p1_ingest.reasons import UNAVAILABLE, reason_of
from p1_ingest.settings import IngestSettings
from p1_ingest.store import write_columns
from p1_servicekit.errors import Forbidden, ServiceError, TooManyRequests, Unauthorized, Unprocessable
from p1_servicekit.problems import DB_UNAVAILABLE
from p1_servicekit.tokens import TokenLookup, bearer_token

_DB_FAILURES: Final[tuple[type[Exception], ...]] = (*DB_UNAVAILABLE, asyncpg.PostgresError)
# The statuses POST /v1/samples may answer, as documented in openapi.yaml (checked by the
# route-vs-spec test); the bodies are the shared problem+json ones.
_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    s: {"description": "see openapi.yaml"} for s in (400, 401, 403, 408, 413, 415, 422, 429, 503)
}


class Ingestor:
    """Everything a request needs, built once per app in the lifespan."""

    def __init__(
        self,
        settings: IngestSettings,
        tokens: TokenLookup,
        pool: "asyncpg.Pool[asyncpg.Record]",
        latest: LatestWriter,
        metrics: IngestMetrics,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.pool = pool
        self.latest = latest
        self.metrics = metrics
        self._inflight: Tally[str] = Tally()
        self._rate = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)

    @contextmanager
    def _slot(self, device_id: str) -> Iterator[None]:
        if self._inflight[device_id] >= self.settings.max_inflight_per_device:
            raise TooManyRequests(1, "Too many batches of this device in flight; retry later.")
        self._inflight[device_id] += 1
        try:
            yield
        finally:
            self._inflight[device_id] -= 1
            if not self._inflight[device_id]:
                del self._inflight[device_id]

    async def handle(self, request: Request) -> Response:
        m = self.metrics
        readings = 0
        try:
            token = bearer_token(request.headers.get("authorization"))
            scope = self.tokens.scope_of(token) if token is not None else None
            if scope is None:
                raise Unauthorized()
            # Before the body is read: a flooding client costs us as little as possible.
            wait_s = self._rate.take(",".join(sorted(scope)))
            if wait_s:
                raise TooManyRequests(wait_s, "Rate limit of this token exceeded; retry later.")
            gzipped = check_content_headers(request)
            s = self.settings
            body = await read_body(request, s.max_body_bytes, s.body_timeout_s, s.retry_after_s)
            if gzipped:
                body = await inflate(body, self.settings.max_decompressed_bytes)
            now = datetime.now(UTC)
            try:
                batch = parse_batch(body, now, scope.__contains__, self._count_path)
            except (Unprocessable, Forbidden):
                readings = _count_readings(body)
                raise
            readings = len(batch)
            with self._slot(batch.device_id):
                started = time.perf_counter()
                try:
                    async with self.pool.acquire(timeout=self.settings.db_acquire_timeout_s) as conn:
                        result = await write_columns(conn, batch, now)
                except _DB_FAILURES as exc:
                    m.db_errors.inc()
                    if isinstance(exc, DB_UNAVAILABLE):  # answered 503 by servicekit's handlers
                        m.reject(UNAVAILABLE, readings)
                    raise
                m.db_write.observe(time.perf_counter() - started)
        except ServiceError as exc:
            m.reject(reason_of(exc), readings)
            raise
        m.batch_size.observe(readings)
        m.accepted.inc(result.accepted)
        m.duplicate.inc(result.duplicates)
        if result.newest is not None:
            m.saw_device(batch.device_id, result.newest.ts.timestamp())
            # After the commit and before the answer, bounded by REDIS_TIMEOUT_S: realtime readers
            # see the reading by the time the edge hears 200.
            await self.latest.publish(batch.device_id, result.newest)
        return Response(
            msgspec.json.encode({"accepted": result.accepted, "duplicates": result.duplicates}),
            media_type="application/json",
        )

    def _count_path(self, fast: bool) -> None:
        self.metrics.fast_path.labels("true" if fast else "false").inc()


def _count_readings(body: bytes) -> int:
    """How many readings a refused body holds, for the rejected-readings metric (0 when unknown)."""
    try:
        return len(msgspec.json.decode(body, type=_Readings).samples)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return 0


class _Readings(msgspec.Struct):
    samples: list[msgspec.Raw] = msgspec.field(default_factory=list)


def ingest_router() -> APIRouter:
    router = APIRouter()

    @router.post("/v1/samples", responses=_RESPONSES)
    async def ingest_samples(request: Request) -> Response:
        ingestor: Ingestor = request.app.state.ingestor
        return await ingestor.handle(request)

    return router
