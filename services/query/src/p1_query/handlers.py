"""The handlers of the query operations of openapi.yaml (tag ``query``), registered by ``routes``: each
checks its input, then delegates. None uses FastAPI's ``Depends`` (see ``state.caller``)."""

import time
from functools import partial
from typing import Annotated, Final, cast
from zoneinfo import ZoneInfo

from fastapi import Header, Path, Query, Request
from fastapi.responses import Response

from p1_contracts.patterns import DEVICE_ID_PATTERN, is_device_id
from p1_peakguard.price import price_eur_per_kw_year
from p1_query.answers import (
    JSON,
    Cacheable,
    CapacityAsked,
    SeriesAsked,
    bill_json,
    cached_answer,
    capacity_json,
    series_json,
)
from p1_query.auth import require_device, unknown_device
from p1_query.buckets import (
    DEFAULT_TZ,
    Bucket,
    check_range,
    check_size,
    month_bounds,
    outer_bounds,
    parse_bucket,
    parse_instant,
    parse_tz,
)
from p1_query.cachekeys import bill_params, capacity_params, series_params
from p1_query.capacity import parse_month, window
from p1_query.capacity_now import capacity_now_json
from p1_query.devices import device_exists, devices_json, list_devices
from p1_query.export import MEDIA_TYPES, Format, bucket_export, check_export_size, filename, raw_export
from p1_query.fields import DEVICE_ID_MAX_LENGTH
from p1_query.notifications import notification_page
from p1_query.state import QueryState, caller, server_timing
from p1_query.streaming import ExportResponse
from p1_servicekit.errors import FieldError, Unprocessable

DeviceId = Annotated[str, Path(pattern=DEVICE_ID_PATTERN, min_length=1, max_length=DEVICE_ID_MAX_LENGTH)]
Instant = Annotated[str, Query(max_length=64)]
Choice = Annotated[str, Query(max_length=16)]
Tz = Annotated[str, Query(min_length=1, max_length=64)]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", max_length=256)]
_UTC: Final = ZoneInfo("UTC")


def check_device_id(value: str) -> str:
    """The path's device id, checked as FastAPI checks ``DeviceId`` (realtime is a plain route)."""
    if not is_device_id(value):
        message = f"String should match pattern '{DEVICE_ID_PATTERN}'"
        raise Unprocessable([FieldError(("path", "device_id"), message, "pattern")])
    return value


async def devices(request: Request) -> Response:
    state, reader = caller(request)
    async with state.acquire() as conn, state.db.time("devices"):
        rows = await list_devices(conn, None if reader.sees_all else reader.scope)
    return Response(devices_json(rows), media_type=JSON)


async def realtime(request: Request) -> Response:
    started = time.perf_counter()
    state, reader = caller(request)
    device_id = check_device_id(request.path_params["device_id"])
    require_device(reader, device_id)
    latest = await state.latest.get(device_id)
    if latest is None:
        raise unknown_device(device_id)
    return Response(
        latest.answer(time.time()),
        media_type=JSON,
        headers={"Cache-Control": "no-store", "Server-Timing": server_timing(started)},
    )


async def series(
    request: Request,
    device_id: DeviceId,
    start: Instant,
    end: Instant,
    bucket: Choice,
    tz: Tz = DEFAULT_TZ,
    if_none_match: IfNoneMatch = None,
) -> Response:
    started = time.perf_counter()
    state, reader = caller(request)
    require_device(reader, device_id)
    size = cast(Bucket, parse_bucket(bucket))
    zone = parse_tz(tz)
    start_at, end_at = parse_instant(start, "start"), parse_instant(end, "end")
    check_size(start_at, end_at, size)
    # A cache hit needs only the outer boundaries (the key); all of them only to compute.
    first, last = outer_bounds(start_at, end_at, size, zone)
    asked = SeriesAsked(device_id, start_at, end_at, size, zone, tz)
    params = series_params(first, last, size, tz)
    compute = partial(series_json, state, asked)
    wanted = Cacheable(reader, device_id, "series", params, last, compute, priced=True)
    return await cached_answer(state, wanted, if_none_match, started)


async def capacity(
    request: Request,
    device_id: DeviceId,
    month: Choice,
    tz: Tz = DEFAULT_TZ,
    if_none_match: IfNoneMatch = None,
) -> Response:
    started = time.perf_counter()
    state, asked, price = _month_asked(request, device_id, month, tz)
    window_end = window(asked.year, asked.month, asked.zone)[1]
    params = capacity_params(month, tz, price)
    compute = partial(capacity_json, state, asked, price)
    wanted = Cacheable(asked.reader, device_id, "capacity", params, window_end, compute)
    return await cached_answer(state, wanted, if_none_match, started)


def _month_asked(
    request: Request, device_id: str, month: str, tz: str
) -> tuple[QueryState, CapacityAsked, float]:
    """A checked request about one local month (capacity, bill), and the capacity price of its year."""
    state, reader = caller(request)
    require_device(reader, device_id)
    year, month_number = parse_month(month)
    asked = CapacityAsked(reader, device_id, year, month_number, parse_tz(tz), tz)
    settings = state.settings
    price = price_eur_per_kw_year(settings.grid_operator, year, settings.capacity_price_eur_per_kw_year)
    return state, asked, price


async def capacity_now(
    request: Request,
    device_id: DeviceId,
    tz: Tz = DEFAULT_TZ,
    cap_kw: Annotated[float | None, Query(gt=0, le=1000)] = None,
) -> Response:
    started = time.perf_counter()
    state, reader = caller(request)
    require_device(reader, device_id)
    zone = parse_tz(tz)
    body = await capacity_now_json(state, device_id, zone, tz, cap_kw)
    headers = {"Cache-Control": "no-store", "Server-Timing": server_timing(started)}
    return Response(body, media_type=JSON, headers=headers)


async def notifications(
    request: Request,
    device_id: DeviceId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{10}[rw]$")] = None,
) -> Response:
    state, reader = caller(request)
    require_device(reader, device_id)
    async with state.acquire() as conn, state.db.time("notifications"):
        if not await device_exists(conn, device_id):
            raise unknown_device(device_id)
        page = await notification_page(conn, device_id, limit, cursor)
    return Response(page.model_dump_json(), media_type=JSON, headers={"Cache-Control": "no-store"})


async def export(
    request: Request,
    device_id: DeviceId,
    start: Instant,
    end: Instant,
    bucket: Choice = "raw",
    format: Choice = "csv",
    tz: Tz = DEFAULT_TZ,
) -> Response:
    state, reader = caller(request)
    require_device(reader, device_id)
    size = parse_bucket(bucket, ("raw", "15m", "1h", "1d"))
    file_format = cast(Format, parse_bucket(format, ("csv", "ndjson"), name="format"))
    zone = parse_tz(tz)
    start_at, end_at = parse_instant(start, "start"), parse_instant(end, "end")
    check_range(start_at, end_at)
    check_export_size(start_at, end_at, size)
    # Checked before the first byte: once streaming has begun the status can no longer change.
    async with state.acquire() as conn, state.db.time("exists"):
        if not await device_exists(conn, device_id):
            raise unknown_device(device_id)
    end_export = state.exports.take(reader.key())  # 429 beyond the limits
    if size == "raw":
        body = raw_export(state.export_reads, device_id, start_at, end_at, file_format)
    else:
        # 15m and 1h on the UTC grid; days are calendar days of tz.
        grid = zone if size == "1d" else _UTC
        reads, daily = state.export_reads, state.daily
        body = bucket_export(reads, daily, device_id, start_at, end_at, size, grid, file_format)
    name = filename(device_id, size, start_at, end_at, file_format)
    return ExportResponse(
        body,
        media_type=MEDIA_TYPES[file_format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
        send_timeout_s=state.settings.export_send_timeout_s,
        end=end_export,
    )


async def bill(
    request: Request,
    device_id: DeviceId,
    month: Choice,
    tz: Tz = DEFAULT_TZ,
    if_none_match: IfNoneMatch = None,
) -> Response:
    started = time.perf_counter()
    state, asked, price = _month_asked(request, device_id, month, tz)
    month_end = month_bounds(asked.year, asked.month, asked.zone)[1]
    compute = partial(bill_json, state, asked, price)
    wanted = Cacheable(
        asked.reader, device_id, "bill", bill_params(month, tz, price), month_end, compute, priced=True
    )
    return await cached_answer(state, wanted, if_none_match, started)
