"""Pure logic, in-process: bucket boundaries, interpolation, quarter demand. Answers computed by hand."""

import random
from datetime import UTC, datetime, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

import pytest
from capacity_reference import QuarterRow, quarter_demands

from p1_peakguard.price import FALLBACK_EUR_PER_KW_YEAR, PRICES, GridOperator, price_eur_per_kw_year
from p1_query.buckets import boundaries, month_bounds, outer_bounds, parse_instant, parse_tz, source_for
from p1_query.capacity import euros, expected_quarters, ledger
from p1_query.energy import chain, chain_rises, curves, energies, interval_energy, rises, weights
from p1_servicekit.errors import Unprocessable

BRU = ZoneInfo("Europe/Brussels")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_spring_day_has_23_hours_and_autumn_day_25() -> None:
    # 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
    spring = boundaries(utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), "1d", BRU)
    assert spring == [utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)]
    autumn = boundaries(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), "1d", BRU)
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    hours = boundaries(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), "1h", BRU)
    assert len(hours) - 1 == 25
    local = [b.astimezone(BRU).strftime("%H%z") for b in hours[1:5]]
    assert local == ["01+0200", "02+0200", "02+0100", "03+0100"]  # 02:00 twice, once per offset


def test_range_is_rounded_out_to_whole_buckets() -> None:
    b = boundaries(utc(2026, 11, 29, 10, 7), utc(2026, 11, 29, 10, 31), "15m", BRU)
    assert b == [
        utc(2026, 11, 29, 10, 0),
        utc(2026, 11, 29, 10, 15),
        utc(2026, 11, 29, 10, 30),
        utc(2026, 11, 29, 10, 45),
    ]
    months = boundaries(utc(2026, 1, 15), utc(2026, 3, 2), "1mo", BRU)
    assert [m.astimezone(BRU).strftime("%m-%d %H:%M") for m in months] == [
        "01-01 00:00",
        "02-01 00:00",
        "03-01 00:00",
        "04-01 00:00",
    ]


def test_half_hour_zone_hours_lie_on_the_utc_half_hour_and_use_quarters() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    b = boundaries(utc(2026, 1, 1, 0, 40), utc(2026, 1, 1, 2, 0), "1h", kolkata)
    assert b == [utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 1, 30), utc(2026, 1, 1, 2, 30)]
    assert source_for("1h", b) == "15m"
    assert source_for("1d", boundaries(utc(2026, 1, 1), utc(2026, 1, 3), "1d", kolkata)) == "15m"
    assert source_for("1d", boundaries(utc(2026, 1, 1), utc(2026, 1, 3), "1d", BRU)) == "1h"
    assert source_for("1m", b) == "raw"


def test_local_days_come_from_rollup_1d_only_where_its_midnights_are_the_boundaries() -> None:
    days = boundaries(utc(2026, 3, 27), utc(2026, 3, 31), "1d", BRU)  # with the 23-hour day
    assert source_for("1d", days, BRU) == "1d"
    assert source_for("1mo", boundaries(utc(2025, 1, 1), utc(2026, 1, 1), "1mo", BRU), BRU) == "1d"
    # Amsterdam's midnights are Brussels' midnights; London's and Kolkata's are not.
    ams = ZoneInfo("Europe/Amsterdam")
    assert source_for("1d", boundaries(utc(2026, 3, 27), utc(2026, 3, 31), "1d", ams), BRU) == "1d"
    london = boundaries(utc(2026, 3, 27), utc(2026, 3, 31), "1d", ZoneInfo("Europe/London"))
    assert source_for("1d", london, BRU) == "1h"
    kolkata = boundaries(utc(2026, 1, 1), utc(2026, 1, 3), "1d", ZoneInfo("Asia/Kolkata"))
    assert source_for("1d", kolkata, BRU) == "15m"
    # Hours are never read from days, and without a known daily zone nothing is.
    assert source_for("1h", boundaries(utc(2026, 1, 1), utc(2026, 1, 2), "1h", BRU), BRU) == "1h"
    assert source_for("1d", days, None) == "1h"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((utc(2026, 1, 2), utc(2026, 1, 1), "1h"), "end"),
        ((utc(2026, 1, 1), utc(2026, 1, 1), "1h"), "end"),
        ((utc(2026, 1, 1), utc(2026, 2, 1), "1m"), "bucket"),  # 44,640 points
        ((utc(2020, 1, 1), utc(2026, 1, 1), "15m"), "bucket"),
    ],
)
def test_bad_ranges_say_what_to_change(args: tuple[datetime, datetime, str], field: str) -> None:
    with pytest.raises(Unprocessable) as err:
        boundaries(*args, BRU)
    assert err.value.errors[0].loc == ("query", field)


@pytest.mark.parametrize("bucket", ["1m", "15m", "1h", "1d", "1mo"])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (utc(2026, 3, 28, 22, 7), utc(2026, 3, 29, 5, 31)),  # spring change inside
        (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)),  # exactly one autumn day
        (utc(2026, 12, 31, 23), utc(2027, 1, 1, 0, 15)),  # a local new year
    ],
)
def test_outer_bounds_are_the_first_and_last_boundary(bucket: str, start: datetime, end: datetime) -> None:
    for tz in (BRU, ZoneInfo("Asia/Kolkata"), ZoneInfo("UTC")):
        b = boundaries(start, end, bucket, tz)
        assert outer_bounds(start, end, bucket, tz) == (b[0], b[-1])


def test_exactly_10000_points_is_allowed() -> None:
    start = utc(2026, 1, 1)
    assert len(boundaries(start, start + timedelta(minutes=10_000), "1m", BRU)) == 10_001


def test_inputs_are_parsed_strictly() -> None:
    assert parse_instant("2026-11-29T00:00:00+01:00", "start") == utc(2026, 11, 28, 23)
    assert parse_instant("2026-11-29T00:00:00Z", "start") == utc(2026, 11, 29)
    with pytest.raises(Unprocessable, match="%2B"):  # an unencoded "+": refused, saying how to send it
        parse_instant("2026-11-29T00:00:00 01:00", "start")
    for bad in ("2026-11-29T00:00:00", "yesterday", "2026-11-29"):
        with pytest.raises(Unprocessable):
            parse_instant(bad, "start")
    for bad in ("Mars/Olympus", "../etc/passwd", "Europe", ""):
        with pytest.raises(Unprocessable):
            parse_tz(bad)


def _q(
    i: int,
    epoch: int,
    t0: float,
    v0: float,
    t1: float,
    v1: float,
    n: int = 2,
    pos: float = 0.0,
    avg: float | None = None,
) -> QuarterRow:
    return QuarterRow(i, epoch, n, pos, t0, t1, v0, v1, avg, None)


def test_interpolation_between_sparse_readings() -> None:
    # Readings at 5 s and 15 s (10 s apart) with 100.0 and 100.01 kWh; boundary at 10 s gets 100.005.
    c = curves([(0, 5.0, 100.0, 5.0, 100.0), (0, 15.0, 100.01, 25.0, 100.03)])
    assert energies(c, [0.0, 10.0, 20.0, 30.0]) == pytest.approx([0.005, 0.015, 0.01])


def test_epochs_never_give_negative_or_jump_sized_energy() -> None:
    # Old meter 5000 → 5001 kWh over [0, 100]; new meter from 0.0 at 150 to 0.5 at 250.
    c = curves([(0, 0.0, 5000.0, 100.0, 5001.0), (1, 150.0, 0.0, 250.0, 0.5)])
    assert energies(c, [0.0, 100.0, 200.0, 300.0]) == pytest.approx([1.0, 0.25, 0.25])
    assert interval_energy(c, 50.0, 200.0) is None  # no single epoch brackets both ends
    assert interval_energy(c, 160.0, 200.0) == pytest.approx(0.2)


def test_quarter_demand_prefers_meter_average_then_counter_then_mean_power() -> None:
    q = 900.0
    groups = [
        # quarter 0: meter average present at 14:59 → 3.2 kW regardless of the counter
        _q(0, 0, 0.0, 10.0, q - 1, 10.5, avg=3200.0),
        # quarter 1: counter from 10.5 (at 899) … 11.0 (at 1799): interpolated 0.5 kWh → 2.0 kW
        _q(1, 0, q, 10.500556, 2 * q - 1, 11.0),
        # quarter 2: one old-meter reading, then a new epoch: no epoch brackets the whole quarter, so
        # the mean of positive power: (2000 + 14500) W / 11 readings = 1.5 kW
        _q(2, 0, 2 * q, 11.000556, 2 * q, 11.000556, n=1, pos=2000.0),
        _q(2, 1, 2 * q + 60, 0.0, 3 * q - 1, 0.2, n=10, pos=14500.0),
        # quarter 3: a reading that completes quarter 2, and is itself the running quarter
        _q(3, 1, 3 * q, 0.2, 3 * q, 0.2, n=1, pos=9000.0),
    ]
    demands = quarter_demands(groups, 0.0, 4)
    assert [(d.method, round(d.kw, 3)) for d in demands] == [
        ("meter_avg", 3.2),
        ("counter", 2.0),
        ("mean_power", 1.5),
    ]  # quarter 3 (9 kW so far) is running: no reading of a later quarter has completed it


def test_only_completed_quarters_have_a_demand() -> None:
    """The newest quarter is running however high its readings: without quarter 1's reading, quarter 0
    (a 6 kW spike at its start) has no demand yet; with it, quarter 0 is complete."""
    spike = _q(0, 0, 0.0, 10.0, 30.0, 10.05, n=4, pos=24000.0)
    assert quarter_demands([spike], 0.0, 2) == []
    later = _q(1, 0, 900.0, 10.1, 900.0, 10.1, n=1, pos=500.0)
    (demand,) = quarter_demands([spike, later], 0.0, 2)
    # counter rule: C(900) − C(0) = 10.1 − 10.0 = 0.1 kWh → 0.4 kW (not the 6 kW mean of the spike)
    assert (demand.method, round(demand.kw, 3)) == ("counter", 0.4)


def test_local_answers_are_bounded_and_expire() -> None:
    from p1_query.cache import Cached, _LocalAnswers

    local = _LocalAnswers(max_bytes=800)
    for k in range(9):  # 9 × 100 bytes > 800: the least recently used goes first
        local.put(f"k{k}", Cached('"e"', b"x" * 100), expires=10.0)
        if k == 4:
            assert local.get("k0", 1.0) is not None  # k0 is now recent; k1 is the oldest
    assert local.get("k1", 1.0) is None
    assert local.get("k0", 1.0) is not None
    assert local.get("k8", 10.0) is None  # expired
    local.put("huge", Cached('"e"', b"x" * 101), expires=10.0)  # more than an eighth: not kept
    assert local.get("huge", 1.0) is None


@pytest.mark.parametrize("seed", range(40))
def test_a_chain_of_groups_rises_as_the_general_interpolation(seed: int) -> None:
    """``energy.chain`` (one group per consecutive bucket) is a shortcut of ``weights``/``rises``: the same
    floats, whatever the readings inside the buckets and whether neighbours lie outside the range."""
    rnd = random.Random(seed)
    size = rnd.randint(1, 30)
    bounds = [1000.0 + 900.0 * j for j in range(size + 1)]
    a0, a1 = rnd.choice([-1, 0, rnd.randint(0, size - 1)]), rnd.choice([size, size - 1, rnd.randint(0, size)])
    a0, a1 = min(a0, a1), max(a0, a1)
    i, first_ts, last_ts, first, last = [], [], [], [], []
    value = 100.0
    for j in range(a0, a1 + 1):
        lo = bounds[0] - 900.0 if j < 0 else bounds[j] if j < size else bounds[-1]
        t0 = lo + rnd.choice([0.0, rnd.uniform(0, 899)])
        t1 = rnd.choice([t0, rnd.uniform(t0, lo + 899.9)])
        v0 = value + rnd.uniform(0, 1)
        value = v0 + (0.0 if t1 == t0 else rnd.uniform(0, 1))
        i.append(j)
        first_ts.append(t0)
        last_ts.append(t1)
        first.append(v0)
        last.append(value)
    linked = chain(i, first_ts, last_ts, bounds)
    assert linked is not None
    points = [x for pair in zip(first_ts, last_ts, strict=True) for x in pair]
    values = [x for pair in zip(first, last, strict=True) for x in pair]
    assert chain_rises(linked, first, last) == rises(values, weights(points, bounds))


def test_money_is_rounded_half_up_to_the_cent() -> None:
    # 2.5 kW × 53.25 €/kW/year = 133.125 € exactly → 133.13 (round() on the float product gives 133.12)
    assert euros(2.5, 53.25) == 133.13
    assert euros(3.833, 50.0) == 191.65  # 191.65 exactly
    assert euros(2.501, 41.05) == 102.67  # 102.66705 → 102.67


def test_the_price_is_the_override_else_the_operators_figure_of_the_year_else_the_fallback() -> None:
    table = {"fluvius-west": {2026: 60.5}}
    assert price_eur_per_kw_year("fluvius-west", 2026, None, table) == 60.5
    assert price_eur_per_kw_year("fluvius-west", 2026, 41.0, table) == 41.0  # the override wins
    assert price_eur_per_kw_year("fluvius-west", 2025, None, table) == FALLBACK_EUR_PER_KW_YEAR  # unknown
    assert price_eur_per_kw_year(None, 2026, None, table) == FALLBACK_EUR_PER_KW_YEAR
    assert set(PRICES) == set(get_args(GridOperator))  # every configurable operator has a row


def test_a_months_source_is_ours_where_they_cover_it_else_the_meters() -> None:
    """2026-03 and 2026-04 in Brussels; ours 3.0 kW in each; the meter reported 3.4 kW for both and
    2.0 kW for 2026-02, where we have nothing. March is covered by our quarters, April is not."""
    zone = ZoneInfo("Europe/Brussels")
    march = datetime(2026, 3, 10, 12, tzinfo=UTC).timestamp()
    april = datetime(2026, 4, 10, 12, tzinfo=UTC).timestamp()
    complete = [False] * 10 + [True, False]  # window 2025-05 … 2026-04
    answer = ledger(
        device_id="d",
        year=2026,
        month=4,
        tz=zone,
        tz_name="Europe/Brussels",
        demands=[(march, 3.0), (april, 3.0)],
        meter_peak_kw=None,
        price_eur_per_kw_year=50.0,
        complete=complete,
        meter_kw={"2026-02": 2.0, "2026-03": 3.4, "2026-04": 3.4},
    )
    assert [(m.month, m.peak_kw, m.counted_kw, m.source) for m in answer.months] == [
        ("2026-02", 2.0, 2.5, "meter"),
        ("2026-03", 3.0, 3.0, "measured"),
        ("2026-04", 3.4, 3.4, "meter"),
    ]
    assert answer.rolling_12m_avg_kw == 2.967  # (2.5 + 3.0 + 3.4) / 3 = 2.9667
    assert answer.peak_kw == 3.0  # the asked month's own quarters, whatever the ledger's source


def test_expected_quarters_are_the_months_quarters_over_by_the_newest_reading() -> None:
    zone = ZoneInfo("Europe/Brussels")
    march = month_bounds(2026, 3, zone)  # 31 days less the spring hour: 743 h = 2972 quarters
    assert expected_quarters(march, datetime(2026, 4, 2, tzinfo=UTC)) == 2972
    # newest reading 2026-03-01 00:40 local (23:40Z the day before): quarters 00:00 and 00:15 are over
    assert expected_quarters(march, datetime(2026, 2, 28, 23, 40, tzinfo=UTC)) == 2
    assert expected_quarters(march, None) == 0
