"""The bill's arithmetic on its own (``p1_query.bill``): the running month's projection, by hand."""

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from p1_query.bill import Month, bill
from p1_query.costs import Energy, PlanPart
from p1_query.costs_sql import quarter_prices
from p1_query.plans import Plan, Segment

DAY = 86400.0
APRIL = datetime(2026, 4, 1, tzinfo=UTC).timestamp()  # 30 days in UTC
PLAN = Plan(
    name="fixed",
    device_id="d",
    valid_from=date(2026, 1, 1),
    starts_at=datetime(2026, 1, 1, tzinfo=UTC),
    tz="UTC",
    import_t1=Decimal("0.30"),
    import_t2=Decimal("0.20"),
    import_dynamic=False,
    import_markup=Decimal(0),
    export_t1=Decimal("0.04"),
    export_t2=Decimal("0.04"),
    export_dynamic=False,
    export_markup=Decimal(0),
    fixed_eur_per_month=Decimal("9.00"),
    capacity_eur_per_kw_year=Decimal("48.00"),
    grid_operator=None,
    vat=Decimal("0.06"),
    currency="EUR",
)


def test_the_running_month_is_partial_and_projected() -> None:
    # A 30-day month, 10 days of it read: 100 kWh day, 50 night, nothing injected; 4 kW billable.
    # Lines: 30.00 + 10.00 + fixed 9.00 + capacity 4 × 48 / 12 = 16.00 = 65.00; VAT 3.90; total 68.90.
    # Projected: energy × 30/10 = 120.00, + 9.00 + 16.00 = 145.00, × 1.06 = 153.70.
    month = Month(
        "d", "2026-04", ZoneInfo("UTC"), "UTC", APRIL, APRIL + 30 * DAY, APRIL + 10 * DAY, APRIL + 10 * DAY
    )
    part = PlanPart(
        Segment(APRIL, APRIL + 30 * DAY, PLAN), Energy(150.0, 100.0, 50.0), Energy(0.0, 0.0, 0.0), None
    )
    got = bill(month, [part], 4.0, 50.0)
    assert [(line.kind, line.amount_eur) for line in got.lines] == [
        ("energy_import_t1", 30.0),
        ("energy_import_t2", 10.0),
        ("fixed", 9.0),
        ("capacity", 16.0),
        ("vat", 3.9),
    ]
    assert (got.total_eur, got.partial, got.projected_total_eur) == (68.9, True, 153.7)


def test_no_plan_no_lines() -> None:
    month = Month(
        "d", "2026-04", ZoneInfo("UTC"), "UTC", APRIL, APRIL + 30 * DAY, APRIL + 40 * DAY, APRIL + 40 * DAY
    )
    got = bill(month, [], 4.0, 50.0)
    assert (got.lines, got.total_eur, got.complete, got.partial) == ([], 0.0, False, False)


def test_quarter_prices_by_slice_and_by_lookup() -> None:
    # Quarters from t = 0 (4 of them). Consecutive quarter-hour prices from −900 on: a slice.
    rows = {"consecutive": True, "a0": -900.0, "a": None, "b": None, "import": [9.0, 1.0, 2.0, 3.0]}
    assert quarter_prices(rows, "import", 0.0, 4) == [1.0, 2.0, 3.0, None]
    # An hourly price covers its four quarters; a price off the quarter grid covers none.
    rows = {"consecutive": False, "a0": 0.0, "a": [0.0, 3605.0], "b": [3600.0, 4505.0], "import": [0.2, 0.5]}
    assert quarter_prices(rows, "import", 0.0, 5) == [0.2, 0.2, 0.2, 0.2, None]
