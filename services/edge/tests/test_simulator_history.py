"""The simulated meter's past (`make demo`'s backfill): coarse five-minute slots whose energies and peaks are
computed here by hand from the profile, readings equal to what the edge makes of the same telegram, and
registers that a live simulator continues without a jump."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sim_testkit import TZ, local

from p1_contracts.models import Sample
from p1_edge.meter.mapping import V1_FIELDS, build_sample, map_values
from p1_edge.simulator.flavours import flavour
from p1_edge.simulator.history import COARSE_STEP_S, History, Span, sample
from p1_edge.simulator.model import MeterModel
from p1_edge.simulator.payloads import data_v1
from p1_edge.simulator.peaks import QUARTER_S, estimated_peak, month_bounds
from p1_edge.simulator.profiles import PROFILES, outdoor_c
from p1_edge.simulator.registers import Registers
from p1_edge.simulator.server import Simulator

BE = flavour("be")
FAMILY = PROFILES["family"]


def epoch(at: datetime) -> int:
    return int(at.timestamp())


def by_hand(start: int, end: int) -> tuple[list[int], list[int], int]:
    """Import and export joules per tariff register and gas millilitres of the five-minute slots in
    [start, end), each slot at the profile's power in its middle."""
    imp, exp, gas = [0, 0], [0, 0], 0
    for slot in range(start, end, COARSE_STEP_S):
        at = datetime.fromtimestamp(slot + COARSE_STEP_S // 2, TZ)
        load, register = FAMILY.load(at), BE.tariff_at(at) - 1
        if load.total >= 0:
            imp[register] += load.total * COARSE_STEP_S
        else:
            exp[register] -= load.total * COARSE_STEP_S
        gas += load.gas_ml_s * COARSE_STEP_S
    return imp, exp, gas


def test_coarse_slots_integrate_the_profile_at_their_middles() -> None:
    start = local(2026, 6, 20)  # a Saturday and a Sunday: sun, EV nights, both registers
    model = MeterModel(FAMILY, TZ, start, flavour=BE)
    before = Registers.of(model.state)
    model.advance_coarse(epoch(start + timedelta(days=2)), COARSE_STEP_S)
    after = Registers.of(model.state)
    imp, exp, gas = by_hand(epoch(start), epoch(start + timedelta(days=2)))
    assert [a - b for a, b in zip(after.import_j, before.import_j, strict=True)] == imp
    assert [a - b for a, b in zip(after.export_j, before.export_j, strict=True)] == exp
    assert after.gas_ml - before.gas_ml == gas
    assert sum(exp) > 0  # June: the panels export


def test_a_coarse_month_peaks_where_the_meter_estimates_its_past() -> None:
    """The backfill's quarters are the live meter's own estimate of those months (peaks.py)."""
    month = (2026, 1)
    first, end = month_bounds(month, TZ)
    model = MeterModel(
        FAMILY, TZ, datetime.fromtimestamp(first, UTC), flavour=BE, installed=local(2026, 1, 1)
    )
    model.advance_coarse(end, COARSE_STEP_S)
    measured = model.peaks.month_peak(month)
    estimate = estimated_peak(FAMILY, TZ, first, end)
    assert measured is not None
    assert measured == estimate
    # and by hand: the highest quarter's mean of its three slots' offtake (the EV and the heat pump)
    quarters = [
        (sum(max(FAMILY.load(datetime.fromtimestamp(q + s, TZ)).total, 0) for s in (150, 450, 750)) / 3, q)
        for q in range(first, end, QUARTER_S)
    ]
    best_w, best_q = max(quarters, key=lambda wq: (wq[0], -wq[1]))
    assert (measured.w, measured.end) == (round(best_w), best_q + QUARTER_S)
    assert measured.w > 7400  # the car, with the house and the heat pump on top


def test_readings_are_what_the_edge_makes_of_the_same_telegram() -> None:
    start = epoch(local(2026, 3, 10, 11, 57, 13))  # not on the slot grid: fine to 12:00 first
    history = History(
        FAMILY, TZ, BE, Span(start, epoch(local(2026, 3, 10, 13)), epoch(local(2026, 3, 10, 13, 0, 5)))
    )
    readings = list(history.readings())
    seconds = [epoch(datetime.fromisoformat(str(r["ts"]))) for r in readings]
    fine_head = list(range(start + 1, epoch(local(2026, 3, 10, 12)) + 1))
    coarse = list(range(epoch(local(2026, 3, 10, 12, 5)), epoch(local(2026, 3, 10, 13)) + 1, COARSE_STEP_S))
    tail = list(range(epoch(local(2026, 3, 10, 13)) + 1, epoch(local(2026, 3, 10, 13, 0, 5)) + 1))
    assert seconds == fine_head + coarse + tail
    # the same model's telegram, through the edge's own mapping, gives the same Sample
    model = MeterModel(FAMILY, TZ, local(2026, 3, 10, 18, 20), flavour=BE)
    reading = model.reading()
    edge = build_sample(map_values(data_v1(reading, "w", -60), V1_FIELDS, TZ, local(2026, 3, 10, 18, 20)))
    assert Sample.model_validate_json(json.dumps(sample(reading))).model_dump() == edge.model_dump()
    assert history.meter is not None
    assert history.meter["serial"] == model.unique_id()


def test_a_live_simulator_continues_the_history_without_a_jump() -> None:
    end = local(2026, 3, 10, 13, 0, 7)
    span = Span(epoch(local(2026, 3, 9)), epoch(local(2026, 3, 10, 11)), epoch(end))
    history = History(FAMILY, TZ, BE, span)
    *_, last = history.readings()
    registers = history.registers()
    assert registers.second == epoch(end) == epoch(datetime.fromisoformat(str(last["ts"])))
    sim = Simulator(profile=FAMILY, start=end + timedelta(seconds=90), speed=0, registers=registers)
    follow = list(history.follow(epoch(end) + 90))
    live = sample(sim.device.reading())
    assert Registers.of(sim.model.state) == history.registers()  # every register, to the joule
    assert live == follow[-1]  # and the same reading at the same second
    assert live["import_kwh"] >= last["import_kwh"]  # type: ignore[operator]


def test_a_later_history_starts_from_the_registers_it_is_given() -> None:
    captured = ((0, 5000), (0, 2000))
    stored = Registers(epoch(local(2026, 3, 10, 12, 0, 1)), (7200, 3600), (0, 36000), 5000, 2000, captured)
    history = History(
        FAMILY, TZ, BE, Span(stored.second, epoch(local(2026, 3, 10, 12)), stored.second + 2), stored
    )
    first, _ = history.readings()
    load = FAMILY.load(local(2026, 3, 10, 12, 0, 1))  # Tuesday noon: register 1 (day)
    assert first["ts"] == "2026-03-10T11:00:02Z"
    assert first["import_t1_kwh"] == (7200 + max(load.total, 0)) // 3600 / 1000
    assert first["export_t2_kwh"] == 0.01


def test_registers_round_trip_and_refuse_what_is_not_a_meter_state() -> None:
    registers = Registers(1, (2, 3), (4, 5), 6, 7, ((8, 9), (10, 11)))
    assert Registers.loads(registers.dumps()) == registers
    for bad in ("{}", "[]", '{"second": -1}', registers.dumps().replace("[2, 3]", "[2]"), "not json"):
        with pytest.raises(ValueError, match=r"not a meter state|not a pair|not a whole number"):
            Registers.loads(bad)


def test_simulate_refuses_a_state_file_it_cannot_use(tmp_path: Path) -> None:
    bad = tmp_path / "state.json"
    bad.write_text('{"second": 1}')
    exe = str(Path(sys.executable).with_name("p1-edge"))
    for path in (bad, tmp_path / "missing.json"):
        done = subprocess.run(
            [exe, "simulate", "--port", "0", "--state", str(path)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("p1-edge simulate: ")
        assert "Traceback" not in done.stderr


def test_the_family_heats_in_winter_and_charges_its_car_on_some_nights() -> None:
    def heat_pump_kwh(day: date) -> float:
        """Phase 3 carries the heat pump and a third of the car; 08:00-22:00 the car never charges."""
        at = datetime(day.year, day.month, day.day, 8, tzinfo=TZ)
        return sum(FAMILY.load(at + timedelta(minutes=m)).l3 for m in range(14 * 60)) / 60 / 1000

    assert outdoor_c(date(2026, 7, 16)) >= 15.0  # summer: no heating at all
    assert heat_pump_kwh(date(2026, 7, 16)) == 0.0
    assert heat_pump_kwh(date(2026, 1, 15)) > 15.0  # most of the day's minutes at 2.5 kW
    evenings = [datetime(2026, 1, 1, 23, tzinfo=TZ) + timedelta(days=d) for d in range(365)]
    nights = [FAMILY.charges_ev(at) for at in evenings]
    assert 0.25 < sum(nights) / 365 < 0.45  # about a third of the nights (ev_nights = 0.35)
    for at, charged in zip(evenings, nights, strict=True):  # past midnight on the evening's draw
        assert FAMILY.charges_ev(at + timedelta(hours=2)) == charged
        assert FAMILY.load(at).l3 - FAMILY.load(at + timedelta(hours=3)).l3 in (
            (round(FAMILY.ev_w / 3) if charged else 0) + d for d in (-2500, 0, 2500)
        )
