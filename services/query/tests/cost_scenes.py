"""The readings, plans and prices of the cost tests (issue 15), as the bulk loader and the tariff loader
would store them, with every euro of the tests computable by hand.

``c-split``: March 2026 (Europe/Brussels: 2026-02-28T23:00Z to 2026-03-31T22:00Z) read every 5 minutes
from its first instant (no February data: the capacity ledger has March alone). 1 kW of offtake
throughout, on register 1 from 06:00Z to 22:00Z and on register 2 otherwise, except the hour 12:00Z of
each day, when 2 kW is injected (register 1) and nothing taken, and the quarter 2026-03-10 18:00Z, when
8 kW is taken (the month's peak, 8 kW). So a UTC day has 15 kWh on register 1, 8 on register 2 and 2
injected. Plan ``fixed-a`` from 2026-03-01, ``fixed-b`` from 2026-03-16 (local midnight:
2026-03-15T23:00Z).

``c-dyn``: 1 kW of offtake (0.25 kWh a quarter) from 2026-03-28T22:00Z to 2026-03-31T00:00Z; a dynamic
plan (markup 0.02, VAT 6 %) and quarter-hour prices over the DST day 2026-03-29 (23 hours, 92 quarters:
quarter k costs 0.10 + 0.001 k), 2026-03-30 with its quarter 10 missing, and hourly prices for
2026-03-31 00:00 and 01:00 local (0.20, 0.30), the last two hours of readings.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

import asyncpg

from p1_schema.bulk import load_device

BRUSSELS: Final = ZoneInfo("Europe/Brussels")
STEP: Final = timedelta(minutes=5)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def split_power(t: datetime) -> tuple[float, int]:
    """(W, register) at t: see the module docstring."""
    if t.hour == 12:
        return -2000.0, 1
    if utc(2026, 3, 10, 18) <= t < utc(2026, 3, 10, 18, 15):
        return 8000.0, 1
    return 1000.0, 1 if 6 <= t.hour < 22 else 2


def _readings(
    start: datetime, end: datetime, power: Callable[[datetime], tuple[float, int]]
) -> dict[str, list[object]]:
    cols: dict[str, list[object]] = {
        k: []
        for k in (
            "ts",
            "power_w",
            "import_kwh",
            "export_kwh",
            "import_t1_kwh",
            "import_t2_kwh",
            "export_t1_kwh",
            "export_t2_kwh",
        )
    }
    counters = {
        "import_t1_kwh": 1000.0,
        "import_t2_kwh": 500.0,
        "export_t1_kwh": 100.0,
        "export_t2_kwh": 50.0,
    }
    t = start
    for _ in range(100_000):
        if t > end:
            break
        w, register = power(t)
        cols["ts"].append(t)
        cols["power_w"].append(w)
        for name, value in counters.items():
            cols[name].append(round(value, 9))
        cols["import_kwh"].append(round(counters["import_t1_kwh"] + counters["import_t2_kwh"], 9))
        cols["export_kwh"].append(round(counters["export_t1_kwh"] + counters["export_t2_kwh"], 9))
        kwh = abs(w) * STEP.total_seconds() / 3.6e6
        counters[f"{'import' if w > 0 else 'export'}_t{register}_kwh"] += kwh
        t += STEP
    return cols


def _plan(name: str, device: str, valid_from: str, **prices: object) -> dict[str, object]:
    day = datetime.fromisoformat(valid_from).date()
    row: dict[str, object] = {
        "name": name,
        "device_id": device,
        "valid_from": day,
        "tz": "Europe/Brussels",
        "starts_at": datetime(day.year, day.month, day.day, tzinfo=BRUSSELS),
        "import_t1": None,
        "import_t2": None,
        "import_dynamic": False,
        "import_markup": Decimal(0),
        "export_t1": None,
        "export_t2": None,
        "export_dynamic": False,
        "export_markup": Decimal(0),
        "fixed_eur_per_month": Decimal(0),
        "capacity_eur_per_kw_year": None,
        "vat": Decimal(0),
    }
    row.update({k: Decimal(str(v)) if isinstance(v, float) else v for k, v in prices.items()})
    return row


PLANS: Final = [
    _plan(
        "fixed-a",
        "c-split",
        "2026-03-01",
        import_t1=0.30,
        import_t2=0.20,
        export_t1=0.05,
        export_t2=0.05,
        fixed_eur_per_month=9.00,
        vat=0.06,
    ),
    _plan(
        "fixed-b",
        "c-split",
        "2026-03-16",
        import_t1=0.40,
        import_t2=0.25,
        export_t1=0.04,
        export_t2=0.04,
        fixed_eur_per_month=12.00,
        capacity_eur_per_kw_year=48.00,
        vat=0.06,
    ),
    _plan(
        "dyn",
        "c-dyn",
        "2026-03-01",
        import_dynamic=True,
        import_markup=0.02,
        export_t1=0.03,
        export_t2=0.03,
        vat=0.06,
    ),
    _plan("rev", "c-rev", "2026-03-01", import_t1=0.30, import_t2=0.30, export_t1=0.0, export_t2=0.0),
]


def dyn_prices() -> list[tuple[datetime, datetime, Decimal | None, Decimal | None]]:
    rows: list[tuple[datetime, datetime, Decimal | None, Decimal | None]] = []
    # 2026-03-29 local has 92 quarters (23 hours), 2026-03-30 has 96.
    for day, quarters, missing in ((utc(2026, 3, 28, 23), 92, None), (utc(2026, 3, 29, 22), 96, 10)):
        for k in range(quarters):
            start = day + timedelta(minutes=15 * k)
            if k == missing:
                continue
            rows.append((start, start + timedelta(minutes=15), Decimal("0.10") + Decimal("0.001") * k, None))
    # 2026-03-31 00:00 and 01:00 local (CEST): hourly prices, each over its four quarters.
    for hour, price in ((utc(2026, 3, 30, 22), "0.20"), (utc(2026, 3, 30, 23), "0.30")):
        rows.append((hour, hour + timedelta(hours=1), Decimal(price), None))
    return rows


async def seed(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await load_device(
            conn, "c-split", _readings(utc(2026, 2, 28, 23), utc(2026, 4, 1), split_power), "S1"
        )
        flat = _readings(utc(2026, 3, 28, 22), utc(2026, 3, 31), lambda t: (1000.0, 1))
        await load_device(conn, "c-dyn", flat, "S2")
        await load_device(conn, "c-rev", dict(flat), "S3")
        names = list(PLANS[0])
        columns = ", ".join(names)
        values = ", ".join(f"${k + 1}" for k in range(len(names)))
        for plan in PLANS:
            await conn.execute(f"INSERT INTO tariff_plans ({columns}) VALUES ({values})", *plan.values())
        await conn.executemany(
            'INSERT INTO energy_prices (start, "end", import_eur_per_kwh, export_eur_per_kwh)'
            " VALUES ($1, $2, $3, $4)",
            dyn_prices(),
        )
        await conn.execute("UPDATE tariff_revision SET revision = revision + 1")
    finally:
        await conn.close()
