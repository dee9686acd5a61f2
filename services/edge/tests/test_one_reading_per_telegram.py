"""Each telegram is stored once: a real edge polling (v1, every 0.5 s) a DSMR 4 simulator, which sends a
telegram every 10 s, stores one reading per telegram; a DSMR 5 simulator whose telegrams all carry the
same values loses none of them. The rule itself (``meter/repeats.py``) is checked case by case first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from edge_testkit import EdgeProcess, FakeIngest, edge_env

from p1_contracts.models import Meter, Sample
from p1_edge.meter.client import Reading
from p1_edge.meter.repeats import SLOW_PERIOD_S, Repeats
from p1_edge.simulator.server import Simulator
from p1_servicekit.testing import eventually

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def reading(second: int, import_kwh: float, version: int | None, *, by_meter: bool = False) -> Reading:
    sample = Sample(ts=T0 + timedelta(seconds=second), power_w=0.0, import_kwh=import_kwh, export_kwh=0.0)
    meter = Meter(serial="4530303331", model="m", protocol_version=version)
    return Reading(sample=sample, meter=meter, timed_by_meter=by_meter)


def test_dsmr4_repeats_are_dropped_until_a_whole_period_has_passed() -> None:
    repeats = Repeats()
    kept = [s for s in range(25) if not repeats.is_repeat(reading(s, 1.0 + (s >= 13) / 1000, 42))]
    # a new value at 13 is a new telegram at once; equal values a whole period later are one too
    assert kept == [0, SLOW_PERIOD_S, 13, 13 + SLOW_PERIOD_S]


@pytest.mark.parametrize("version", [50, None])
def test_dsmr5_and_unknown_meters_keep_every_second_even_with_equal_values(version: int | None) -> None:
    repeats = Repeats()
    assert [repeats.is_repeat(reading(s, 1.0, version)) for s in range(5)] == [False] * 5
    assert repeats.is_repeat(reading(4, 1.0, version))  # polled twice in one second


def test_v2_repeats_are_the_same_meter_time() -> None:
    repeats = Repeats()
    assert [repeats.is_repeat(reading(s // 10 * 10, 1.0, 42, by_meter=True)) for s in range(12)] == [
        s % 10 != 0 for s in range(12)
    ]


@pytest.fixture
async def ingest() -> AsyncIterator[FakeIngest]:
    fake = await FakeIngest(tokens={"tok": "telegrams"}).start()
    yield fake
    await fake.close()


async def start_edge(sim: Simulator, ingest: FakeIngest, tmp_path: Path, edges: list[EdgeProcess]) -> None:
    env = edge_env(
        meter=sim.host_port,
        ingest_url=ingest.url,
        token="tok",
        spool=tmp_path / "s.sqlite",
        DEVICE_ID="telegrams",
    )
    edges.append(await EdgeProcess(env).start())


def stored(ingest: FakeIngest) -> list[dict[str, object]]:
    return [sample for (_, _), sample in sorted(ingest.stored.items(), key=lambda kv: kv[0][1])]


async def test_a_dsmr4_telegram_polled_many_times_is_stored_once(
    tmp_path: Path, ingest: FakeIngest, edges: list[EdgeProcess]
) -> None:
    # 11 kW of EV charging at night: every telegram's counters differ from the last one's
    start = datetime.fromisoformat("2026-11-30T23:00:00+01:00")
    sim = Simulator(api="v1", profile="ev", dsmr=4, start=start, speed=0.0)
    await sim.start()
    try:
        await start_edge(sim, ingest, tmp_path, edges)
        for _ in range(6):
            polls = sim.paths["/api/v1/data"]
            await eventually(
                lambda before=polls: sim.paths["/api/v1/data"] >= before + 3,
                20,
                "three polls of one telegram",
            )
            sim.clock.advance(10)  # the meter's next telegram
        telegrams: dict[int, list[dict[str, object]]] = {}
        for served in sim.served:
            telegrams.setdefault(int(str(served["second"])), []).append(served)
        await eventually(lambda: len(ingest.stored) >= len(telegrams), 20, "every telegram at ingest")
        rows = stored(ingest)
        assert len(rows) == len(telegrams) >= 6  # one reading per telegram, not one per poll
        assert sum(len(polls) for polls in telegrams.values()) >= 3 * len(rows)
        for row, (_, polls) in zip(rows, sorted(telegrams.items()), strict=True):
            assert row["import_kwh"] == polls[0]["import_kwh"]
            first_poll = float(str(polls[0]["at"]))
            ts = row["ts"]
            assert isinstance(ts, datetime)
            assert first_poll - 1.5 < ts.timestamp() <= first_poll  # the first poll's (whole-second) time
    finally:
        await sim.close()


async def test_a_dsmr5_meter_repeating_its_values_loses_no_second(
    tmp_path: Path, ingest: FakeIngest, edges: list[EdgeProcess]
) -> None:
    sim = Simulator(api="v1", profile="idle", country="nl", dsmr=5)  # real time: a telegram a second
    await sim.start()
    try:
        await start_edge(sim, ingest, tmp_path, edges)
        await eventually(lambda: len(ingest.stored) >= 6, 30, "six seconds of readings at ingest")
        assert len({(r["power_w"], r["import_kwh"]) for r in sim.served}) == 1  # all telegrams alike
        seconds = sorted(int(ts) for _, ts in ingest.stored)
        assert seconds == list(range(seconds[0], seconds[0] + len(seconds)))  # every second, no gap
    finally:
        await sim.close()
