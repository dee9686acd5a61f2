"""The meter's local times placed as instants, through both daylight-saving changes (pure: no I/O).

Each case starts from true UTC instants, turns them into what the meter shows (local time, no offset,
as API v2 and the mapping hand them over: fold 0) and checks that the clock gives the instants back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from p1_edge.meter.localtime import ClockState, LocalClock, TelegramTimes, instants
from p1_edge.meter.mapping import Values

TZ = ZoneInfo("Europe/Brussels")
# 2026-10-25: 03:00 CEST → 02:00 CET; the local hour 02:00–02:59 happens twice.
FIRST_PASS = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST
SECOND_PASS = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 02:00 CET
# 2026-03-29: 02:00 CET → 03:00 CEST; the local hour 02:00–02:59 never happens.
SPRING = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def shown(instant: datetime) -> datetime:
    """What the meter shows for ``instant``: its local wall-clock time, read back as fold 0."""
    return instant.astimezone(TZ).replace(tzinfo=None).replace(tzinfo=TZ)


def telegram(instant: datetime, *events: datetime) -> TelegramTimes:
    lines = [f"0-0:1.0.0({_dsmr(instant)})", *(f"1-0:1.6.0({_dsmr(e)})(03.000*kW)" for e in events)]
    return TelegramTimes.parse("\r\n".join(["/SIM5", "", *lines, "!0000"]))


def _dsmr(instant: datetime) -> str:
    local = instant.astimezone(TZ)
    return f"{local:%y%m%d%H%M%S}{'S' if local.dst() else 'W'}"


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def place(
    clock: LocalClock, instant: datetime, tele: TelegramTimes | None = None, **events: datetime
) -> Values:
    values: Values = {"ts": shown(instant), **{k: shown(v) for k, v in events.items()}}
    clock.place(values, tele)
    return values


def test_instants_of_a_repeated_skipped_and_plain_hour() -> None:
    assert instants(shown(FIRST_PASS + timedelta(minutes=30))) == (
        FIRST_PASS + timedelta(minutes=30),
        SECOND_PASS + timedelta(minutes=30),
    )
    skipped = datetime(2026, 3, 29, 2, 30, tzinfo=TZ)  # never shown by a meter
    assert instants(skipped) == (datetime(2026, 3, 29, 1, 30, tzinfo=UTC),)
    assert instants(shown(SPRING)) == (SPRING,)


@pytest.mark.parametrize("step_s", [1, 10, 59 * 60])
def test_a_running_edge_follows_the_clock_back_into_the_repeated_hour(step_s: int) -> None:
    tick = FakeMonotonic()
    clock = LocalClock(TZ, None, tick)
    start = FIRST_PASS - timedelta(minutes=10)
    end = SECOND_PASS + timedelta(minutes=65)
    truth = [start + timedelta(seconds=k * step_s) for k in range((end - start).seconds // step_s)] + [end]
    placed = []
    for instant in truth:
        placed.append(place(clock, instant)["ts"])
        tick.now += 1
    assert placed == truth
    assert clock.state is not None
    assert clock.state.fold == 0  # ended after the repeated hour


def test_the_spring_gap_is_crossed_without_a_step_back() -> None:
    clock = LocalClock(TZ, None, FakeMonotonic())
    truth = [SPRING - timedelta(seconds=2) + timedelta(seconds=k) for k in range(5)]
    assert [place(clock, t)["ts"] for t in truth] == truth
    assert [t.astimezone(TZ).hour for t in truth] == [1, 1, 3, 3, 3]


def test_a_restart_in_the_second_pass_is_placed_by_the_persisted_state() -> None:
    last = SECOND_PASS + timedelta(minutes=10)
    state = ClockState.loads(ClockState(last.timestamp(), 1).dumps())
    clock = LocalClock(TZ, state, FakeMonotonic())
    values: Values = {"ts": shown(last + timedelta(minutes=3))}
    assert not clock.needs_telegram(values)  # the first pass is before the last reading: ruled out
    clock.place(values)
    assert values["ts"] == last + timedelta(minutes=3)
    assert clock.state == ClockState((last + timedelta(minutes=3)).timestamp(), 1)


@pytest.mark.parametrize("truth", [FIRST_PASS + timedelta(minutes=25), SECOND_PASS + timedelta(minutes=25)])
def test_a_restart_in_doubt_asks_the_telegram_once(truth: datetime) -> None:
    before = ClockState((FIRST_PASS + timedelta(minutes=20)).timestamp(), 0)
    for state in (before, None):  # a first-pass state, and no state at all
        clock = LocalClock(TZ, state, FakeMonotonic())
        values: Values = {"ts": shown(truth)}
        assert clock.needs_telegram(values)
        clock.place(values, telegram(truth + timedelta(seconds=1)))  # read a moment later
        assert values["ts"] == truth
        assert not clock.needs_telegram({"ts": shown(truth + timedelta(seconds=1))})  # continuity now


def test_a_telegram_read_across_the_change_still_places_the_reading() -> None:
    truth = FIRST_PASS + timedelta(minutes=59, seconds=59)  # 02:59:59 CEST; the telegram says 02:00:00 CET
    values: Values = {"ts": shown(truth)}
    LocalClock(TZ, None, FakeMonotonic()).place(values, telegram(truth + timedelta(seconds=1)))
    assert values["ts"] == truth


def test_without_a_telegram_the_first_pass_is_taken_and_said(caplog: pytest.LogCaptureFixture) -> None:
    values: Values = {"ts": shown(SECOND_PASS + timedelta(minutes=5))}
    LocalClock(TZ, None, FakeMonotonic()).place(values, None)
    assert values["ts"] == FIRST_PASS + timedelta(minutes=5)
    assert "repeated hour" in caplog.text


def test_event_times_keep_their_pass_and_new_ones_take_the_latest() -> None:
    tick = FakeMonotonic()
    clock = LocalClock(TZ, None, tick)
    peak = FIRST_PASS + timedelta(minutes=15)  # a quarter that ended in the first pass
    placed = place(clock, FIRST_PASS + timedelta(minutes=15, seconds=2), month_peak_ts=peak)
    assert placed["month_peak_ts"] == peak
    for minutes in (30, 75, 80):  # on into the second pass: the same peak keeps its instant
        tick.now += 1
        now = FIRST_PASS + timedelta(minutes=minutes)
        gas = now - timedelta(minutes=minutes % 5, seconds=0)
        placed = place(clock, now, month_peak_ts=peak, gas_ts=gas)
        assert (placed["month_peak_ts"], placed["gas_ts"]) == (peak, gas)
    tick.now += 1
    later_peak = SECOND_PASS + timedelta(minutes=30)  # a higher quarter in the second pass, same clock face
    placed = place(clock, later_peak + timedelta(seconds=3), month_peak_ts=later_peak)
    assert placed["month_peak_ts"] == later_peak


def test_an_event_time_at_start_up_is_placed_by_the_telegrams_flag() -> None:
    peak = FIRST_PASS + timedelta(minutes=15)
    now = SECOND_PASS + timedelta(hours=2)  # after the change: both passes of 02:15 are in the past
    clock = LocalClock(TZ, None, FakeMonotonic())
    values: Values = {"ts": shown(now), "month_peak_ts": shown(peak)}
    assert clock.needs_telegram(values)
    clock.place(values, telegram(now, peak))
    assert values["month_peak_ts"] == peak
    second = SECOND_PASS + timedelta(minutes=15)
    values = {"ts": shown(now), "month_peak_ts": shown(second)}
    LocalClock(TZ, None, FakeMonotonic()).place(values, telegram(now, second))
    assert values["month_peak_ts"] == second


def test_unreadable_state_is_no_state() -> None:
    assert ClockState.loads(None) is None
    assert ClockState.loads("{") is None
    assert ClockState.loads('{"utc": "x", "fold": 0}') is None
