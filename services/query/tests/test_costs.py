"""What it costs (issue 15): series costs and the month's bill over HTTP (real query, Redis, PostgreSQL),
with every euro computed by hand below from ``cost_scenes`` (its docstring has the readings)."""

import json
import re
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cost_scenes import seed
from redis.asyncio import Redis

from p1_query.price_settle import settle_all
from p1_servicekit.testing import ServiceProcess

ALL = {"Authorization": "Bearer tok-all"}
CAP_ONLY = {"Authorization": "Bearer tok-cap"}  # scoped to q-cap
README = Path(__file__).parents[3] / "README.md"


@pytest.fixture(scope="module")
async def costs(loaded: str) -> str:
    await seed(loaded)
    return loaded


@pytest.fixture(params=["from quarters", "settled"])
async def dyn(request: pytest.FixtureRequest, costs: str, redis_client: Redis) -> str:
    """``costs`` with c-dyn's dynamic price sums computed from the quarters, or settled (migration 0012):
    the same euros either way. The answer cache is emptied, so each way is asked."""
    conn = await asyncpg.connect(costs)
    try:
        if request.param == "settled":
            await settle_all(conn)
            # UTC days 03-28 to 03-30: ended by the newest reading, 2026-03-31T00:00Z.
            assert await conn.fetchval("SELECT count(*) FROM price_sums WHERE device_id = 'c-dyn'") == 3
        else:
            await conn.execute("DELETE FROM price_sums")
    finally:
        await conn.close()
    await redis_client.flushdb()
    return costs


def _get(
    api: ServiceProcess, path: str, params: dict[str, str], headers: dict[str, str] = ALL
) -> httpx.Response:
    return httpx.get(f"{api.base_url}{path}", params=params, headers=headers, timeout=30)


def _costs(
    api: ServiceProcess, device: str, start: str, end: str, bucket: str, tz: str
) -> list[tuple[Any, Any]]:
    r = _get(api, f"/v1/devices/{device}/series", {"start": start, "end": end, "bucket": bucket, "tz": tz})
    assert r.status_code == 200, r.text
    return [(p["import_cost_eur"], p["export_revenue_eur"]) for p in r.json()["points"]]


def _near(got: list[tuple[Any, Any]], want: list[tuple[Any, Any]]) -> None:
    assert len(got) == len(want), got
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=True):
            assert (a is None) == (b is None), (got, want)
            assert a is None or abs(a - b) < 1e-6, (got, want)


def test_a_day_spanning_a_plan_change_is_split_at_it(api: ServiceProcess, costs: str) -> None:
    # fixed-b starts at 2026-03-16 Brussels = 2026-03-15T23:00Z, inside the UTC day 2026-03-15. Before it
    # (23 h): register 1 15 kWh × 0.30, register 2 7 kWh (00–06h, 22h) × 0.20; after (23h): register 2
    # 1 kWh × 0.25. (4.50 + 1.40 + 0.25) × 1.06 = 6.519. Injection 2 kWh at 12h × 0.05 × 1.06 = 0.106.
    got = _costs(api, "c-split", "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z", "1d", "UTC")
    _near(got, [(6.519, 0.106)])
    # The local days around it lie each in one plan: 15 (a): (15 × 0.30 + 8 × 0.20) × 1.06 = 6.466;
    # 16 (b): (15 × 0.40 + 8 × 0.25) × 1.06 = 8.48, injection 2 × 0.04 × 1.06 = 0.0848.
    got = _costs(
        api, "c-split", "2026-03-15T00:00:00+01:00", "2026-03-17T00:00:00+01:00", "1d", "Europe/Brussels"
    )
    _near(got, [(6.466, 0.106), (8.48, 0.0848)])


def test_a_month_bucket_prices_each_plan_part(api: ServiceProcess, costs: str) -> None:
    # a: register 1 226.75 kWh (15 days × 15 + the 8 kW quarter's extra 1.75) × 0.30 = 68.025, register 2
    # 120 × 0.20 = 24; b: 240 × 0.40 = 96, 127 × 0.25 = 31.75. 219.775 × 1.06 = 232.9615.
    # Injection: 30 × 0.05 + 32 × 0.04 = 2.78; × 1.06 = 2.9468.
    got = _costs(
        api, "c-split", "2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00", "1mo", "Europe/Brussels"
    )
    _near(got, [(232.9615, 2.9468)])


def test_injection_revenue_comes_from_export_only(api: ServiceProcess, costs: str) -> None:
    # 12:00Z: 2 kWh injected, nothing taken: cost 0, revenue 2 × 0.04 × 1.06. 13:00Z: 1 kWh taken, none out.
    got = _costs(api, "c-split", "2026-03-20T12:00:00Z", "2026-03-20T14:00:00Z", "1h", "UTC")
    _near(got, [(0.0, 0.0848), (0.424, 0.0)])


def test_dynamic_quarter_prices_over_a_dst_day_and_a_missing_price(api: ServiceProcess, dyn: str) -> None:
    # 2026-03-29 Brussels: 23 hours, 92 quarters of 0.25 kWh, quarter k at 0.10 + 0.001 k:
    # 0.25 × (92 × 0.10 + 0.001 × 4186) = 3.3465, markup 0.02 × 23 kWh = 0.46; 3.8065 × 1.06 = 4.03489.
    # 2026-03-30 misses quarter 10's price: null, never a guess. Injection (fixed 0.03, none): 0.
    # 2026-03-31: two hours of readings at hourly prices (each over its quarters): (1 × 0.20 + 1 × 0.30
    # + 0.02 × 2) × 1.06 = 0.5724.
    got = _costs(
        api, "c-dyn", "2026-03-29T00:00:00+01:00", "2026-04-01T00:00:00+02:00", "1d", "Europe/Brussels"
    )
    _near(got, [(4.03489, 0.0), (None, 0.0), (0.5724, 0.0)])
    # An hour (00:00Z–01:00Z = quarters 4–7): 0.25 × (0.40 + 0.022) + 0.02 × 1 = 0.1255; × 1.06 = 0.13303.
    _near(_costs(api, "c-dyn", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "1h", "UTC"), [(0.13303, 0.0)])
    # A quarter (01:00Z = quarter 8): 0.25 × (0.108 + 0.02) × 1.06 = 0.03392.
    _near(
        _costs(api, "c-dyn", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z", "15m", "UTC"), [(0.03392, 0.0)]
    )


def test_no_plan_no_cost(api: ServiceProcess, costs: str) -> None:
    # q-cap has readings and no plan: energy, no cost.
    r = _get(
        api,
        "/v1/devices/q-cap/series",
        {"start": "2026-02-10T17:00:00Z", "end": "2026-02-10T18:00:00Z", "bucket": "15m"},
    )
    points = r.json()["points"]
    assert any(p["import_kwh"] is not None for p in points)
    assert {(p["import_cost_eur"], p["export_revenue_eur"]) for p in points} == {(None, None)}


# The bill of March 2026 (README, "What it costs", worked example): (kind, plan, quantity, amount).
BILL_LINES = [
    ("energy_import_t1", "fixed-a", 226.75, 68.03),  # 68.025 rounded half-up
    ("energy_import_t2", "fixed-a", 120.0, 24.00),
    ("export", "fixed-a", 30.0, -1.50),
    ("fixed", "fixed-a", 0.483871, 4.35),  # 9.00 × 15/31 days
    ("energy_import_t1", "fixed-b", 240.0, 96.00),
    ("energy_import_t2", "fixed-b", 127.0, 31.75),
    ("export", "fixed-b", 32.0, -1.28),
    ("fixed", "fixed-b", 0.516129, 6.19),  # 12.00 × 16/31 days
    ("capacity", "fixed-b", 8.0, 32.00),  # 8 kW × 48.00 / 12
    ("vat", "fixed-a", 94.88, 5.69),
    ("vat", "fixed-b", 164.66, 9.88),
]


def _bill(api: ServiceProcess, device: str, month: str, headers: dict[str, str] = ALL) -> httpx.Response:
    return _get(api, f"/v1/devices/{device}/bill", {"month": month, "tz": "Europe/Brussels"}, headers)


def test_the_bill_of_a_month_adds_up_to_the_cent(api: ServiceProcess, costs: str) -> None:
    r = _bill(api, "c-split", "2026-03")
    assert r.status_code == 200, r.text
    bill = r.json()
    got = [(x["kind"], x["plan"], x["quantity"], x["amount_eur"]) for x in bill["lines"]]
    assert got == BILL_LINES
    assert (bill["subtotal_eur"], bill["vat_eur"], bill["total_eur"]) == (259.54, 15.57, 275.11)
    cents = sum(round(x["amount_eur"] * 100) for x in bill["lines"])
    assert cents == round(bill["total_eur"] * 100)
    assert bill["plans"] == ["fixed-a", "fixed-b"]
    assert bill["complete"] is True
    assert bill["partial"] is False
    assert bill["projected_total_eur"] is None


def test_the_readme_worked_example_is_this_bill(api: ServiceProcess, costs: str) -> None:
    # The README's table rows: | kind | plan | quantity | unit | unit price | amount |
    text = README.read_text().split("<!-- worked-bill -->")[1]
    rows = re.findall(r"^\| `(\w+)` \| (\S+) \| ([0-9.]+) \| \w+ \| [^|]+ \| (−?[0-9.]+) \|$", text, re.M)
    readme = [(k, p, float(q), float(a.replace("−", "-"))) for k, p, q, a in rows]
    assert readme == BILL_LINES
    assert "**total 275.11**" in text


def test_a_dynamic_bill_says_what_is_unpriced(api: ServiceProcess, dyn: str) -> None:
    bill = _bill(api, "c-dyn", "2026-03").json()
    dynamic = [x for x in bill["lines"] if x["kind"] == "dynamic"]
    # Priced: 03-29's 23 kWh, 03-30's other 95 quarters (23.75) and 03-31's 2. Not priced: 03-28
    # 23:00–24:00 (1 kWh) and quarter 10 of 03-30 (0.25): no market prices there.
    assert len(dynamic) == 1
    assert (dynamic[0]["quantity"], dynamic[0]["unpriced_kwh"]) == (48.75, 1.25)
    assert bill["complete"] is False


def test_bill_outside_the_tokens_scope_is_404_and_a_bad_month_422(api: ServiceProcess, costs: str) -> None:
    r = _bill(api, "c-split", "2026-03", CAP_ONLY)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    r = _bill(api, "c-split", "2026-13")
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["loc"] == ["query", "month"]


async def test_a_new_plan_load_reaches_cached_answers_at_once(api: ServiceProcess, costs: str) -> None:
    # 24 kWh × 0.30 = 7.2 (no VAT); the price changed without a load (no new revision): the cached
    # answer stays; a load (revision + 1) gives 24 × 0.50 = 12.0 at once.
    ask = ("c-rev", "2026-03-29T00:00:00Z", "2026-03-30T00:00:00Z", "1d", "UTC")
    _near(_costs(api, *ask), [(7.2, 0.0)])
    conn = await asyncpg.connect(costs)
    try:
        await conn.execute(
            "UPDATE tariff_plans SET import_t1 = 0.50, import_t2 = 0.50 WHERE device_id = 'c-rev'"
        )
        _near(_costs(api, *ask), [(7.2, 0.0)])
        await conn.execute("UPDATE tariff_revision SET revision = revision + 1")
        _near(_costs(api, *ask), [(12.0, 0.0)])
    finally:
        await conn.close()


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_exports_carry_the_cost_columns(api: ServiceProcess, costs: str, fmt: str) -> None:
    # The local days of test_a_day_spanning_a_plan_change_is_split_at_it, exported.
    params = {"start": "2026-03-15T00:00:00+01:00", "end": "2026-03-17T00:00:00+01:00", "bucket": "1d"}
    r = _get(api, "/v1/devices/c-split/export", {**params, "format": fmt, "tz": "Europe/Brussels"})
    assert r.status_code == 200, r.text
    if fmt == "csv":
        lines = r.text.splitlines()
        head = lines[0].split(",")
        rows = [dict(zip(head, line.split(","), strict=True)) for line in lines[1:]]
    else:
        rows = [json.loads(line) for line in r.text.splitlines()]
    got = [(float(row["import_cost_eur"]), float(row["export_revenue_eur"])) for row in rows]
    _near(got, [(6.466, 0.106), (8.48, 0.0848)])
