"""The simulated smart meter's arithmetic, each answer computed by hand from a scripted load."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sim_testkit import TZ, local, scripted

from p1_edge.simulator import payloads
from p1_edge.simulator.flavours import FLAVOURS, Flavour, flavour
from p1_edge.simulator.model import MeterModel
from p1_edge.simulator.profiles import PROFILES, Profile
from p1_edge.simulator.reading import MonthPeak, Peak

BE = flavour("be")
NL = flavour("nl")


def model_at(profile: Profile, start: datetime, **options: Any) -> MeterModel:
    return MeterModel(profile, TZ, start, **options)


@pytest.mark.parametrize("meter", [BE, NL], ids=lambda f: f.name)
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_counters_integrate_power_exactly(profile: str, meter: Flavour) -> None:
    start = datetime(2026, 6, 21, 5, 0, tzinfo=UTC)  # through sunrise, breakfast, solar, tariffs
    model = model_at(PROFILES[profile], start, flavour=meter)
    imp0, exp0, gas0 = list(model.state.import_j), list(model.state.export_j), model.state.gas_ml
    seconds = 4 * 3600
    model.step_seconds(seconds)
    want_imp, want_exp, want_gas = [0, 0], [0, 0], 0
    base = int(start.timestamp())
    for s in range(base, base + seconds):
        at = datetime.fromtimestamp(s, TZ)
        load = PROFILES[profile].load(at)
        reg = model.flavour.tariff_at(at) - 1
        if load.total >= 0:
            want_imp[reg] += load.total
        else:
            want_exp[reg] -= load.total
        want_gas += load.gas_ml_s
    got_imp = [model.state.import_j[r] - imp0[r] for r in (0, 1)]
    got_exp = [model.state.export_j[r] - exp0[r] for r in (0, 1)]
    assert (got_imp, got_exp) == (want_imp, want_exp)  # joules, exactly
    assert model.state.gas_ml - gas0 == want_gas
    if PROFILES[profile].solar_peak_w:
        assert sum(want_exp) > 0  # a June morning exports


@pytest.mark.parametrize(
    ("meter", "start", "day_wh", "night_wh", "tariff_after"),
    [
        # Belgium: register 1 is day, 2 night; night from 22:00 (Friday 13 March 2026)
        (BE, local(2026, 3, 13, 21, 50), 600, 600, 2),
        # the Netherlands: register 2 is normal, 1 low; low from 23:00
        (NL, local(2026, 3, 13, 22, 50), 600, 600, 1),
    ],
    ids=["be", "nl"],
)
def test_tariff_registers_switch_at_the_local_hour_and_add_up(
    meter: Flavour, start: datetime, day_wh: int, night_wh: int, tariff_after: int
) -> None:
    model = model_at(scripted(3600), start, flavour=meter)  # 3600 W: exactly 1 Wh a second
    before = model.reading()
    model.step_seconds(1200)
    after = model.reading()
    night = model.flavour.night_register - 1
    gained = [after.import_wh[r] - before.import_wh[r] for r in (0, 1)]
    assert gained[1 - night] == day_wh
    assert gained[night] == night_wh
    assert (before.tariff, after.tariff) == (3 - tariff_after, tariff_after)
    body = payloads.data_v1(after, "w", -60)
    assert body["total_power_import_kwh"] == (after.import_wh[0] + after.import_wh[1]) / 1000
    assert body["active_tariff"] == tariff_after


def test_weekends_run_on_the_night_register() -> None:
    sunday_noon = local(2026, 3, 15, 12)
    assert BE.tariff_at(sunday_noon) == 2
    assert NL.tariff_at(sunday_noon) == 1
    monday = local(2026, 3, 16)
    assert [BE.tariff_at(monday.replace(hour=h)) for h in (6, 7, 21, 22)] == [2, 1, 1, 2]
    assert [NL.tariff_at(monday.replace(hour=h)) for h in (6, 7, 22, 23)] == [1, 2, 2, 1]


def test_the_first_quarter_is_whole_although_the_simulation_starts_inside_it() -> None:
    # 2000 W from 12:00 to 12:10, nothing after; the simulation starts at 12:07:30.
    profile = scripted(0, (local(2026, 3, 10, 12), 2000), (local(2026, 3, 10, 12, 10), 0))
    model = model_at(profile, local(2026, 3, 10, 12, 7, 30), installed=local(2026, 3, 10, 12))
    model.step_seconds(449)  # 12:14:59: the quarter is not over
    capacity = model.reading().capacity
    assert capacity is not None
    assert capacity.month_peak == Peak(0, local(2026, 3, 1))  # nothing completed yet this month
    assert capacity.average_w == round(2000 * 600 / 899)  # 1335: the running quarter so far
    model.step_seconds(1)  # 12:15:00
    capacity = model.reading().capacity
    assert capacity is not None
    # 2000 W × 600 s / 900 s = 1333.3 W, not the 333 W of the part after 12:07:30
    assert capacity.month_peak == Peak(1333, local(2026, 3, 10, 12, 15))
    assert capacity.average_w == 0  # a new quarter has just begun


def test_a_spike_counts_only_once_its_quarter_is_complete() -> None:
    spike = local(2026, 3, 10, 12, 15)
    profile = scripted(400, (spike, 4000), (spike + timedelta(minutes=1), 400))
    model = model_at(profile, local(2026, 3, 10, 12), installed=local(2026, 3, 10, 12))
    model.step_seconds(16 * 60)  # 12:16, one minute into the spike's quarter
    capacity = model.reading().capacity
    assert capacity is not None
    assert capacity.average_w == 4000
    assert capacity.month_peak == Peak(400, spike)  # the 12:00 quarter, not the running one
    model.step_seconds(14 * 60)  # 12:30
    capacity = model.reading().capacity
    assert capacity is not None
    assert capacity.month_peak == Peak((60 * 4000 + 840 * 400) // 900, local(2026, 3, 10, 12, 30))  # 640 W


def test_the_last_quarter_of_a_month_belongs_to_that_month() -> None:
    last = local(2026, 1, 31, 23, 45)
    profile = scripted(100, (last, 3000), (local(2026, 2, 1), 100))
    model = model_at(profile, local(2026, 1, 31, 23), installed=local(2026, 1, 31, 23))
    model.step_seconds(90 * 60)  # 2026-02-01 00:30
    assert model.history() == (MonthPeak(local(2026, 2, 1), Peak(3000, local(2026, 2, 1))),)
    capacity = model.reading().capacity
    assert capacity is not None
    assert capacity.month_peak == Peak(100, local(2026, 2, 1, 0, 15))  # equal quarters: the earlier


def test_an_old_meter_has_thirteen_months_of_history_from_its_first_telegram() -> None:
    model = model_at(scripted(1000), local(2026, 3, 10, 12, 7, 30))
    history = model.history()
    assert len(history) == 13
    months = [(2025 + (m - 1) // 12, (m - 1) % 12 + 1) for m in range(2, 15)]  # 2025-02 … 2026-02
    for entry, (year, month) in zip(history, months, strict=True):
        first = local(year, month, 1)
        assert entry.peak == Peak(1000, first + timedelta(minutes=15))  # equal quarters: the first
        assert entry.month_end == local(year + month // 12, month % 12 + 1, 1)
    capacity = model.reading().capacity
    assert capacity is not None
    assert capacity.month_peak == Peak(1000, local(2026, 3, 1, 0, 15))  # from before the simulation


def test_only_belgian_meters_keep_capacity_registers() -> None:
    for meter in FLAVOURS.values():
        model = model_at(scripted(500), local(2026, 3, 10, 12), flavour=meter)
        assert (model.reading().capacity is not None) == meter.capacity
        assert bool(model.history()) == meter.capacity


def test_dsmr4_gas_is_captured_on_the_hour_with_the_hour_it_belongs_to() -> None:
    start = local(2026, 3, 10, 12, 0)
    model = model_at(PROFILES["home"], start, flavour=flavour(dsmr=4))
    gas0 = model.state.gas_ml
    model.step_seconds(3599)
    (gas,) = [m for m in model.reading().mbus if m.kind == "gas_meter"]
    assert (gas.captured, gas.litres) == (start, gas0 // 1000)  # still the 12:00 value at 12:59:59
    model.step_seconds(1)
    (gas,) = [m for m in model.reading().mbus if m.kind == "gas_meter"]
    flow = sum(PROFILES["home"].load(start + timedelta(seconds=s)).gas_ml_s for s in range(3600))
    assert (gas.captured, gas.litres) == (local(2026, 3, 10, 13), (gas0 + flow) // 1000)


def test_replacing_meters_resets_their_counters_and_ids() -> None:
    model = model_at(PROFILES["home"], local(2026, 3, 10, 12))
    before = model.reading()
    model.replace(["gas"])
    gas_only = model.reading()
    assert gas_only.import_wh == before.import_wh
    assert gas_only.unique_id == before.unique_id
    (old_gas,) = [m for m in before.mbus if m.kind == "gas_meter"]
    (new_gas,) = [m for m in gas_only.mbus if m.kind == "gas_meter"]
    assert (new_gas.litres, new_gas.unique_id != old_gas.unique_id) == (0, True)
    model.replace(["electricity"])
    new_meter = model.reading()
    assert (new_meter.import_wh, new_meter.export_wh) == ((0, 0), (0, 0))
    assert new_meter.unique_id != before.unique_id
    assert (new_meter.power_failures, new_meter.failure_log) == (0, ())
    assert model.history() == ()  # a new meter has no peaks yet
