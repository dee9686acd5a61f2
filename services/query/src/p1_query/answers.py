"""Series and capacity answers: computed from PostgreSQL, or taken from the cache, or a 304.

``cached_answer`` reads the device's version first (which also tells an unknown device, 404, before any
other work), looks the answer up under a key of that version (``cachekeys``), computes it on a miss and
stores it. The compute functions take the connection and the version the lookup used.
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from fastapi.responses import Response
from pydantic_core import to_json

from p1_contracts.models import Capacity
from p1_peakguard.quarter import WINDOW_MONTHS
from p1_query import bill, capacity
from p1_query.auth import Reader, unknown_device
from p1_query.buckets import Bucket, boundaries, month_bounds, source_for
from p1_query.cache import Cached, cache_control, etag_matches, etag_of
from p1_query.cachekeys import DeviceVersion, device_version, priced
from p1_query.capacity_sql import meter_month_peak_w, meter_peaks_kw
from p1_query.costs import Energy, PlanPart, dynamic_directions, point_costs, with_costs
from p1_query.db import Conn
from p1_query.fields import POINT_FIELDS
from p1_query.forms import json_objects, json_values
from p1_query.groups import fetch_group_columns
from p1_query.month_tops import MonthTops
from p1_query.plans import Segment, device_plans, in_force
from p1_query.price_sums import dynamic_sums
from p1_query.series import build_points, counter_energies, local_bounds
from p1_query.state import QueryState, server_timing
from p1_query.volumes import fetch_volumes

JSON: Final = "application/json"
Compute = Callable[[Conn, DeviceVersion], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Cacheable:
    """An answer the cache may hold: whose, of which kind, for which parameters (its key), about
    readings before ``range_end`` (whether it is final), and how to compute it."""

    reader: Reader
    device_id: str
    kind: str
    params: str
    range_end: datetime
    compute: Compute
    # The answer carries costs: keyed by the tariff revision too (``cachekeys.priced``).
    priced: bool = False


async def cached_answer(
    state: QueryState, wanted: Cacheable, if_none_match: str | None, started: float
) -> Response:
    """The answer from the cache, or computed and stored; 304 when the client's ETag still holds."""
    async with state.acquire() as conn:
        async with state.db.time("version"):
            version = await device_version(conn, wanted.device_id)
        if version is None:
            raise unknown_device(wanted.device_id)
        tag, final = version.of_range(wanted.range_end)
        if wanted.priced:
            tag = priced(tag, version.tariff_revision)
        found = await state.cache.lookup(wanted.device_id, tag, wanted.kind, wanted.params, final)
        entry = found.hit
        if entry is None:
            body = await wanted.compute(conn, version)
            entry = Cached(etag_of(body), body)
    if found.hit is None and found.key is not None:
        await state.cache.store(found.key, entry, final, wanted.reader.key())
    headers = {
        "ETag": entry.etag,
        "Cache-Control": cache_control(final),
        "Server-Timing": server_timing(started),
    }
    if etag_matches(if_none_match, entry.etag):
        return Response(status_code=304, headers=headers)
    return Response(entry.body, media_type=JSON, headers=headers)


@dataclass(frozen=True, slots=True)
class SeriesAsked:
    """A checked series request."""

    device_id: str
    start: datetime
    end: datetime
    bucket: Bucket
    zone: ZoneInfo
    tz_name: str


async def series_json(state: QueryState, asked: SeriesAsked, conn: Conn, _version: DeviceVersion) -> bytes:
    bounds = boundaries(asked.start, asked.end, asked.bucket, asked.zone)
    async with state.db.time("series"):
        source = source_for(asked.bucket, bounds, await state.daily.get(conn))
        groups = await fetch_group_columns(conn, asked.device_id, source, bounds)
        volumes = await fetch_volumes(conn, asked.device_id, source, bounds)
        plans = await device_plans(conn, asked.device_id)
    # The Series model's fields in its order, written by the models' serializer (pydantic_core's): the
    # same text as ``Series.model_dump_json`` (a test holds them equal), without ~3,000 point models.
    head = {
        "device_id": asked.device_id,
        "bucket": asked.bucket,
        "tz": asked.tz_name,
        "start": bounds[0].astimezone(asked.zone),
        "end": bounds[-1].astimezone(asked.zone),
        "points": [],
    }
    local = json_values(local_bounds(bounds, asked.zone))
    points = build_points(groups, volumes, bounds, local)
    async with state.db.time("costs"):
        costs = await point_costs(conn, asked.device_id, plans, asked.bucket, bounds, points)
    return json_objects(POINT_FIELDS, with_costs(points, costs), to_json(head)[: -len(b"[]}")], b"}")


@dataclass(frozen=True, slots=True)
class CapacityAsked:
    """A checked capacity request."""

    reader: Reader
    device_id: str
    year: int
    month: int
    zone: ZoneInfo
    tz_name: str


async def capacity_json(
    state: QueryState, asked: CapacityAsked, price: float, conn: Conn, version: DeviceVersion
) -> bytes:
    return (await capacity_answer(state, asked, price, conn, version)).model_dump_json().encode()


async def capacity_answer(
    state: QueryState, asked: CapacityAsked, price: float, conn: Conn, version: DeviceVersion
) -> Capacity:
    month_start, month_end = month_bounds(asked.year, asked.month, asked.zone)
    tops = MonthTops(conn, state.cache, state.db, version, asked.device_id, asked.reader.key())
    window = await tops.of_window(asked.year, asked.month, asked.zone, asked.tz_name)
    months = capacity.months_back(asked.year, asked.month, WINDOW_MONTHS)
    expected = [
        capacity.expected_quarters(month_bounds(*year_month, asked.zone), version.last_ts)
        for year_month in months
    ]
    async with state.db.time("capacity"):
        peak_w = await meter_month_peak_w(conn, asked.device_id, month_start, month_end)
        labels = [capacity.month_label(*year_month) for year_month in months]
        reported = await meter_peaks_kw(conn, asked.device_id, labels)
    return capacity.ledger(
        device_id=asked.device_id,
        year=asked.year,
        month=asked.month,
        tz=asked.zone,
        tz_name=asked.tz_name,
        demands=window.demands(),
        meter_peak_kw=None if peak_w is None else round(peak_w / 1000.0, 3),
        price_eur_per_kw_year=price,
        complete=[0 < need <= m.quarters for need, m in zip(expected, window.months, strict=True)],
        meter_kw=reported,
    )


async def bill_json(
    state: QueryState, asked: CapacityAsked, ledger_price: float, conn: Conn, version: DeviceVersion
) -> bytes:
    """The month's bill (``bill``): each plan's part of the month read once — register energies from the
    coarsest rollup on its bounds, dynamic directions' quarter sums in one statement — and the month's
    billable kW from its capacity ledger."""
    month_start, month_end = month_bounds(asked.year, asked.month, asked.zone)
    async with state.db.time("bill"):
        plans = await device_plans(conn, asked.device_id)
        segments = in_force(plans, asked.device_id, month_start.timestamp(), month_end.timestamp())
        parts = await _priced_parts(state, conn, asked.device_id, segments)
    ledger = await capacity_answer(state, asked, ledger_price, conn, version)
    month = bill.Month(
        device_id=asked.device_id,
        label=capacity.month_label(asked.year, asked.month),
        zone=asked.zone,
        tz_name=asked.tz_name,
        start=month_start.timestamp(),
        end=month_end.timestamp(),
        newest=None if version.last_ts is None else version.last_ts.timestamp(),
        now=time.time(),
    )
    return bill.bill(month, parts, ledger.billable_kw, ledger_price).model_dump_json().encode()


async def _priced_parts(
    state: QueryState, conn: Conn, device_id: str, segments: list[Segment]
) -> list[PlanPart]:
    if not segments:
        return []
    bounds = [datetime.fromtimestamp(t, UTC) for t in (*(s.start for s in segments), segments[-1].end)]
    source = source_for("1d", bounds, await state.daily.get(conn))
    energy = counter_energies(await fetch_group_columns(conn, device_id, source, bounds), bounds)
    dynamic = {}
    directions = dynamic_directions(segments)
    if directions:
        dynamic = await dynamic_sums(conn, device_id, bounds, bounds[:-1], directions)

    def at(counter: str, k: int) -> float | None:
        values = energy[counter]
        return None if values is None else values[k]

    return [
        PlanPart(
            segment,
            Energy(at("import", k), at("import_t1", k), at("import_t2", k)),
            Energy(at("export", k), at("export_t1", k), at("export_t2", k)),
            dynamic.get((k, k)),
        )
        for k, segment in enumerate(segments)
    ]
