"""``GET /v1/devices/{device_id}/capacity/now``: the running quarter-hour, computed by ``p1_peakguard``
(the one implementation notify warns with) from the newest reading — Redis's when ingest published it,
else PostgreSQL's — and one statement for the rest (``p1_peakguard.store``). Never cached: it is polled.
"""

from zoneinfo import ZoneInfo

from p1_contracts.models import CapacityNow
from p1_peakguard.price import price_eur_per_kw_year
from p1_peakguard.quarter import Reading
from p1_peakguard.store import fetch_inputs
from p1_query.auth import unknown_device
from p1_query.state import QueryState
from p1_schema.redis import decode_latest, latest_key


async def newest_from_redis(state: QueryState, device_id: str) -> Reading | None:
    """The reading ingest published as the device's latest, or None (no Redis, Redis down, no key, or a
    value that is not what ingest writes: then PostgreSQL answers)."""
    raw = await state.redis.run(lambda r: r.get(latest_key(device_id)))
    found = decode_latest(raw)
    if found is None:
        return None
    import_kwh, power_w = found.fields.get("import_kwh"), found.fields.get("power_w")
    if not isinstance(import_kwh, float) or not isinstance(power_w, float):
        return None
    return Reading(found.ts, import_kwh, power_w)


async def capacity_now_json(
    state: QueryState, device_id: str, zone: ZoneInfo, tz_name: str, cap_kw: float | None
) -> bytes:
    newest = await newest_from_redis(state, device_id)
    async with state.acquire() as conn, state.db.time("capacity_now"):
        inputs = await fetch_inputs(conn, device_id, zone, newest)
    if inputs is None:
        raise unknown_device(device_id)
    settings = state.settings
    price = price_eur_per_kw_year(
        settings.grid_operator, inputs.month.year, settings.capacity_price_eur_per_kw_year
    )
    now = inputs.quarter(cap_kw, price)
    answer = CapacityNow(
        device_id=device_id,
        tz=tz_name,
        quarter_start=now.quarter_start.astimezone(zone),
        quarter_end=now.quarter_end.astimezone(zone),
        elapsed_s=now.elapsed_s,
        energy_kwh=now.energy_kwh,
        kw_so_far=now.kw_so_far,
        power_w=now.power_w,
        projected_kw=now.projected_kw,
        month_peak_kw=now.month_peak_kw,
        threshold_kw=now.threshold_kw,
        headroom_kw=now.headroom_kw,
        extra_cost_eur=now.extra_cost_eur,
        as_of=now.as_of,
    )
    return answer.model_dump_json().encode()
