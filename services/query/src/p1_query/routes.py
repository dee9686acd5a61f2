"""The query operations of openapi.yaml (tag ``query``). Handlers validate, then delegate."""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Final, Literal, cast
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from p1_contracts.models import Device, Meter, Series
from p1_contracts.patterns import DEVICE_ID_PATTERN, is_device_id
from p1_servicekit.errors import FieldError, Unprocessable
from p1_servicekit.redis_guard import RedisGuard
from p1_servicekit.routing import PlainRoute
from p1_servicekit.tokens import TokenLookup

from . import capacity as cap
from .auth import Reader, authenticate, require_device, unknown_device
from .buckets import (
    DEFAULT_TZ,
    boundaries,
    check_range,
    check_size,
    month_bounds,
    outer_bounds,
    parse_bucket,
    parse_instant,
    parse_tz,
    source_for,
)
from .cache import Cached, ResponseCache, cache_control, etag_matches, etag_of
from .export import (
    MEDIA_TYPES,
    Format,
    PageReader,
    bucket_export,
    check_export_size,
    filename,
    raw_export,
)
from .month_tops import window_tops
from .realtime import LatestReadings
from .series import build_points
from .settings import QuerySettings
from .store import (
    Conn,
    DailyZone,
    DbTimer,
    DeviceVersion,
    device_exists,
    device_version,
    fetch_groups,
    list_devices,
    meter_month_peak_w,
)
from .streaming import ExportResponse, ExportSlots

_DEVICES: Final = TypeAdapter(list[Device])
JSON: Final = "application/json"


@dataclass
class QueryState:
    settings: QuerySettings
    tokens: TokenLookup
    pool: "asyncpg.Pool[asyncpg.Record]"
    redis: RedisGuard
    cache: ResponseCache
    db: DbTimer
    latest: LatestReadings
    exports: ExportSlots
    export_reads: PageReader
    daily: DailyZone = field(default_factory=DailyZone)

    def acquire(self) -> "asyncpg.pool.PoolAcquireContext":
        # A bounded wait: a saturated or unreachable database becomes a 503, not a hung request.
        return self.pool.acquire(timeout=self.settings.db_acquire_timeout_s)


def _caller(request: Request) -> tuple[QueryState, Reader]:
    """The app's state and the authenticated reader. A plain call, not a FastAPI dependency: solving
    dependencies costs more than the whole realtime answer (measured: ~0.5 ms of ~1 ms in-process)."""
    st = cast(QueryState, request.app.state.query)
    return st, authenticate(st.tokens, request.headers.get("authorization"))


def check_device_id(value: str) -> str:
    if not is_device_id(value):
        raise Unprocessable(
            [
                FieldError(
                    ("path", "device_id"), f"String should match pattern '{DEVICE_ID_PATTERN}'", "pattern"
                )
            ]
        )
    return value


DeviceId = Annotated[str, Path(pattern=DEVICE_ID_PATTERN, min_length=1, max_length=64)]
Tz = Annotated[str, Query(min_length=1, max_length=64)]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", max_length=256)]

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    401: {"description": "no or unknown token"},
    404: {"description": "unknown device, or outside the token's scope"},
    422: {"description": "invalid input"},
    503: {"description": "database unavailable"},
}
_CACHED: Final[dict[int | str, dict[str, Any]]] = {304: {"description": "not modified"}, **_ERRORS}
_EXPORT: Final[dict[int | str, dict[str, Any]]] = {429: {"description": "too many exports"}, **_ERRORS}


def _server_timing(started: float) -> str:
    return f"app;dur={(time.perf_counter() - started) * 1000:.3f}"


async def _cached_answer(
    st: QueryState,
    *,
    reader: Reader,
    device_id: str,
    kind: str,
    params: str,
    range_end: datetime,
    if_none_match: str | None,
    started: float,
    compute: Callable[[Conn, DeviceVersion], Awaitable[bytes]],
) -> Response:
    """The answer from the cache, or computed and stored; 304 when the client's ETag still holds.

    The device's version, read first, also tells an unknown device (404) before any other work."""
    async with st.acquire() as conn:
        async with st.db.time("version"):
            version = await device_version(conn, device_id)
        if version is None:
            raise unknown_device(device_id)
        tag, final = version.of_range(range_end)
        found = await st.cache.lookup(device_id, tag, kind, params, final)
        entry = found.hit
        if entry is None:
            body = await compute(conn, version)
            entry = Cached(etag_of(body), body)
    if found.hit is None and found.key is not None:
        await st.cache.store(found.key, entry, final, reader.key())
    headers = {
        "ETag": entry.etag,
        "Cache-Control": cache_control(final),
        "Server-Timing": _server_timing(started),
    }
    if etag_matches(if_none_match, entry.etag):
        return Response(status_code=304, headers=headers)
    return Response(entry.body, media_type=JSON, headers=headers)


def add_query_routes(router: FastAPI) -> None:
    """Registers the operations on the app itself: an included APIRouter becomes a branch that
    FastAPI matches a second time on every request (measured: a sixth of a realtime answer)."""

    @router.get("/v1/devices", responses={k: v for k, v in _ERRORS.items() if k in (401, 503)})
    async def devices(request: Request) -> Response:
        st, reader = _caller(request)
        async with st.acquire() as conn, st.db.time("devices"):
            rows = await list_devices(conn, None if reader.sees_all else reader.scope)
        out = [
            Device(
                device_id=r["device_id"],
                first_seen=r["first_seen"],
                last_seen=r["last_seen"],
                meter=None
                if r["meter_serial"] is None
                else Meter(
                    serial=r["meter_serial"],
                    model=r["meter_model"],
                    protocol_version=r["meter_protocol_version"],
                ),
            )
            for r in rows
        ]
        return Response(_DEVICES.dump_json(out), media_type=JSON)

    async def realtime(request: Request) -> Response:
        started = time.perf_counter()
        st, reader = _caller(request)
        device_id = check_device_id(request.path_params["device_id"])
        require_device(reader, device_id)
        latest = await st.latest.get(device_id)
        if latest is None:
            raise unknown_device(device_id)
        return Response(
            latest.answer(time.time()),
            media_type=JSON,
            headers={"Cache-Control": "no-store", "Server-Timing": _server_timing(started)},
        )

    # The hottest route: a plain Starlette route (see servicekit.routing), matched first. It checks
    # its path parameter itself, so FastAPI's parameter machinery has nothing to do for it.
    router.router.routes.insert(
        0,
        PlainRoute("/v1/devices/{device_id}/realtime", realtime, methods=["GET"], responses=_ERRORS),
    )

    @router.get("/v1/devices/{device_id}/series", responses=_CACHED)
    async def series(
        request: Request,
        device_id: DeviceId,
        start: Annotated[str, Query(max_length=64)],
        end: Annotated[str, Query(max_length=64)],
        bucket: Annotated[str, Query(max_length=16)],
        tz: Tz = DEFAULT_TZ,
        if_none_match: IfNoneMatch = None,
    ) -> Response:
        started = time.perf_counter()
        st, reader = _caller(request)
        require_device(reader, device_id)
        b = cast(Literal["1m", "15m", "1h", "1d", "1mo"], parse_bucket(bucket))
        zone = parse_tz(tz)
        s, e = parse_instant(start, "start"), parse_instant(end, "end")
        check_size(s, e, b)
        # A cache hit needs only the outer boundaries (the key); all of them only to compute.
        first, last = outer_bounds(s, e, b, zone)

        async def compute(conn: Conn, _version: DeviceVersion) -> bytes:
            bounds = boundaries(s, e, b, zone)
            async with st.db.time("series"):
                source = source_for(b, bounds, await st.daily.get(conn))
                groups = await fetch_groups(conn, device_id, source, bounds)
            answer = Series(
                device_id=device_id,
                bucket=b,
                tz=tz,
                start=bounds[0].astimezone(zone),
                end=bounds[-1].astimezone(zone),
                points=build_points(groups, bounds, zone),
            )
            return answer.model_dump_json().encode()

        return await _cached_answer(
            st,
            reader=reader,
            device_id=device_id,
            kind="series",
            params=f"{first.isoformat()}|{last.isoformat()}|{b}|{tz}",
            range_end=last,
            if_none_match=if_none_match,
            started=started,
            compute=compute,
        )

    @router.get("/v1/devices/{device_id}/capacity", responses=_CACHED)
    async def capacity(
        request: Request,
        device_id: DeviceId,
        month: Annotated[str, Query(max_length=16)],
        tz: Tz = DEFAULT_TZ,
        if_none_match: IfNoneMatch = None,
    ) -> Response:
        started = time.perf_counter()
        st, reader = _caller(request)
        require_device(reader, device_id)
        year, mon = cap.parse_month(month)
        zone = parse_tz(tz)
        w_end = cap.window(year, mon, zone)[1]
        price = st.settings.capacity_price_eur_per_kw_year

        async def compute(conn: Conn, version: DeviceVersion) -> bytes:
            m_start, m_end = month_bounds(year, mon, zone)
            tops = await window_tops(
                conn, st.cache, st.db, version, device_id, year, mon, zone, tz, reader.key()
            )
            async with st.db.time("capacity"):
                peak_w = await meter_month_peak_w(conn, device_id, m_start, m_end)
            answer = cap.ledger(
                device_id=device_id,
                year=year,
                month=mon,
                tz=zone,
                tz_name=tz,
                demands=[cap.QuarterDemand(start, kw, "sql") for start, kw in tops],
                meter_peak_kw=None if peak_w is None else round(peak_w / 1000.0, 3),
                price_eur_per_kw_year=price,
            )
            return answer.model_dump_json().encode()

        return await _cached_answer(
            st,
            reader=reader,
            device_id=device_id,
            kind="capacity",
            # The price is part of the answer: a new price must not be hidden by old cached answers.
            params=f"{month}|{tz}|{price}",
            range_end=w_end,
            if_none_match=if_none_match,
            started=started,
            compute=compute,
        )

    @router.get("/v1/devices/{device_id}/export", responses=_EXPORT)
    async def export(
        request: Request,
        device_id: DeviceId,
        start: Annotated[str, Query(max_length=64)],
        end: Annotated[str, Query(max_length=64)],
        bucket: Annotated[str, Query(max_length=16)] = "raw",
        format: Annotated[str, Query(max_length=16)] = "csv",
        tz: Tz = DEFAULT_TZ,
    ) -> Response:
        st, reader = _caller(request)
        require_device(reader, device_id)
        b = parse_bucket(bucket, ("raw", "15m", "1h", "1d"))
        fmt = cast(Format, parse_bucket(format, ("csv", "ndjson"), name="format"))
        zone = parse_tz(tz)
        s, e = parse_instant(start, "start"), parse_instant(end, "end")
        check_range(s, e)
        check_export_size(s, e, b)
        # Checked before the first byte: once streaming has begun the status can no longer change.
        async with st.acquire() as conn, st.db.time("exists"):
            if not await device_exists(conn, device_id):
                raise unknown_device(device_id)
        end_export = st.exports.take(reader.key())  # 429 beyond the limits
        if b == "raw":
            body = raw_export(st.export_reads, device_id, s, e, fmt)
        else:
            # 15m and 1h in UTC; days are calendar days of tz.
            grid = zone if b == "1d" else ZoneInfo("UTC")
            body = bucket_export(st.export_reads, st.daily, device_id, s, e, b, grid, fmt)
        return ExportResponse(
            body,
            media_type=MEDIA_TYPES[fmt],
            headers={"Content-Disposition": f'attachment; filename="{filename(device_id, b, s, e, fmt)}"'},
            send_timeout_s=st.settings.export_send_timeout_s,
            end=end_export,
        )
