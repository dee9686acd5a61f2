"""``POST /v1/samples``: auth → content headers → body within limits → whole-batch validation →
one transaction → 200 after the commit → Redis (best effort, bounded). ``PUT …/meter-peaks`` shares the
first steps (``p1_ingest.peaks``)."""

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

from p1_contracts.patterns import DEVICE_ID_PATTERN, is_device_id
from p1_ingest.body import check_content_headers, inflate, read_body
from p1_ingest.latest import LatestWriter
from p1_ingest.metrics import IngestMetrics
from p1_ingest.parse import parse_batch
from p1_ingest.peaks import parse_peaks
from p1_ingest.peaks_store import store_peaks
from p1_ingest.ratelimit import RateLimiter
from p1_ingest.reasons import UNAVAILABLE, reason_of
from p1_ingest.settings import IngestSettings
from p1_ingest.store import write_columns
from p1_servicekit.errors import (
    FieldError,
    Forbidden,
    ServiceError,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)
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

    async def _scope(self, request: Request) -> frozenset[str]:
        """The token's devices, once it is known and within its rate (before the body is read: a
        flooding client costs us as little as possible)."""
        token = bearer_token(request.headers.get("authorization"))
        scope = self.tokens.scope_of(token) if token is not None else None
        if scope is None:
            raise Unauthorized()
        wait_s = self._rate.take(",".join(sorted(scope)))
        if wait_s:
            raise TooManyRequests(wait_s, "Rate limit of this token exceeded; retry later.")
        return scope

    async def _body(self, request: Request) -> bytes:
        gzipped = check_content_headers(request)
        s = self.settings
        body = await read_body(request, s.max_body_bytes, s.body_timeout_s, s.retry_after_s)
        return await inflate(body, s.max_decompressed_bytes) if gzipped else body

    async def handle_peaks(self, request: Request, device_id: str) -> Response:
        """``PUT /v1/devices/{device_id}/meter-peaks`` (``p1_ingest.peaks``)."""
        scope = await self._scope(request)
        if not is_device_id(device_id):
            message = f"String should match pattern '{DEVICE_ID_PATTERN}'"
            raise Unprocessable([FieldError(("path", "device_id"), message, "pattern")])
        if device_id not in scope:
            raise Forbidden(f"This token may not write device {device_id!r}.")
        peaks = parse_peaks(await self._body(request), datetime.now(UTC))
        try:
            async with self.pool.acquire(timeout=self.settings.db_acquire_timeout_s) as conn:
                stored = await store_peaks(conn, device_id, peaks)
        except _DB_FAILURES:
            self.metrics.db_errors.inc()
            raise
        return Response(msgspec.json.encode({"stored": stored}), media_type="application/json")

    async def handle(self, request: Request) -> Response:
        m = self.metrics
        readings = 0
        try:
            scope = await self._scope(request)
            body = await self._body(request)
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

    # The device id is checked by the handler after the token (401 before 422), as /v1/samples does.
    @router.put("/v1/devices/{device_id}/meter-peaks", responses=_RESPONSES)
    async def put_meter_peaks(request: Request, device_id: str) -> Response:
        ingestor: Ingestor = request.app.state.ingestor
        return await ingestor.handle_peaks(request, device_id)

    return router
