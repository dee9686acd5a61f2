"""The integrity rules by themselves (``integrity.py``): the O(1) check, the replay, late readings."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from p1_ingest.integrity import (
    GLITCH,
    GOOD,
    SUSPECT,
    Anchor,
    Level,
    Limits,
    Replay,
    late_fits,
    steady,
)

LIM = Limits()
R, S = LIM.rate, LIM.slack
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def feed_all(replay: Replay, values: list[tuple[float, float, float]]) -> None:
    for k, (t, imp, exp) in enumerate(values):
        replay.feed(T0 + timedelta(seconds=t), T0.timestamp() + t, imp, exp, k)


def level(t: float, imp: float, exp: float = 0.0) -> Level:
    return Level(T0 + timedelta(seconds=t), T0.timestamp() + t, imp, exp, R)


def test_the_limits_are_three_times_63_a_at_230_v_and_one_telegram() -> None:
    assert LIM.max_power_w == 3 * 63 * 230
    assert S == R * 10


def test_a_new_reading_is_bounded_by_the_slowest_good_reading() -> None:
    """a: 100 at 0 s; b: 100 + r·1000 + S/2 at 1000 s (fast, still consistent with a). At 1001 s the
    counter may be at most r·1001 + S above a — less than r·1 + S above b allows: m remembers a."""
    good = level(0, 100.0)
    good.add(T0, T0.timestamp() + 1000, 100.0 + R * 1000 + S / 2, 0.0, R)
    assert good.m_imp == 100.0 - R * T0.timestamp()
    t = T0.timestamp() + 1001
    assert good.fits(t, 100.0 + R * 1001 + S - 1e-6, 0.0, LIM)
    assert not good.fits(t, 100.0 + R * 1001 + S + 1e-6, 0.0, LIM)


def test_after_an_idle_stretch_the_idle_reading_bounds() -> None:
    """a: 100 at 0 s; b: 100 at 1000 s (nothing used). At 1001 s at most r·1 + S above either."""
    good = level(0, 100.0)
    good.add(T0, T0.timestamp() + 1000, 100.0, 0.0, R)
    t = T0.timestamp() + 1001
    assert good.fits(t, 100.0 + R + S * 0.99, 0.0, LIM)
    assert not good.fits(t, 100.0 + R + S * 1.01, 0.0, LIM)
    assert not good.fits(t, 99.999, 0.0, LIM)  # down
    assert not good.fits(t, 100.0, -0.001, LIM)  # export down: either counter suffices


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.floats(0.5, 3600), st.floats(0, 1.2), st.floats(0, 1.2), st.floats(0, 0.2)),
        min_size=1,
        max_size=30,
    )
)
def test_the_fast_check_agrees_with_reading_by_reading(
    steps: list[tuple[float, float, float, float]],
) -> None:
    """``steady`` (C-level, the usual batch) accepts a batch exactly when feeding its readings one by
    one keeps them all good, and leaves the same level behind."""
    t, imp, exp = T0.timestamp(), 500.0, 20.0
    rows = []
    for gap, p_imp, p_exp, burst in steps:
        t += gap
        imp += p_imp * R * gap + burst * S
        exp += p_exp * R * gap
        rows.append((t, imp, exp))
    fast, slow = level(0, 500.0, 20.0), level(0, 500.0, 20.0)
    at = [T0 + timedelta(seconds=r[0] - T0.timestamp()) for r in rows]
    ok = steady(fast, at, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], LIM)
    replay = Replay(LIM, slow, 0)
    for k, (a, (tt, i, e)) in enumerate(zip(at, rows, strict=True)):
        replay.feed(a, tt, i, e, k)
    replay.finish()
    assert ok == all(f == (GOOD, 0) for f in replay.outcome.values())
    if ok:
        assert (fast.imp, fast.exp, fast.m_imp, fast.m_exp, fast.last_at) == (
            slow.imp,
            slow.exp,
            slow.m_imp,
            slow.m_exp,
            slow.last_at,
        )


def test_replay_glitch_then_return() -> None:
    replay = Replay(LIM, level(0, 95.0), 0)
    feed_all(replay, [(60, 95.01, 0.0), (120, 33.0, 0.0), (180, 95.03, 0.0)])
    replay.finish()
    assert [replay.outcome[k] for k in range(3)] == [(GOOD, 0), (GLITCH, 0), (GOOD, 0)]
    assert replay.new == []


def test_replay_confirms_a_run_after_five_minutes_and_three_readings() -> None:
    """Two readings 10 minutes apart are not enough, nor three over 299 s; four over 300 s are, and the
    epoch starts at the run's first reading."""
    low = [(60, 1.0, 0.0), (200, 1.05, 0.0), (359, 1.1, 0.0), (360, 1.1, 0.0)]
    two = Replay(LIM, level(0, 500.0), 0)
    feed_all(two, [(60, 1.0, 0.0), (660, 1.1, 0.0)])
    two.finish()
    assert two.new == []
    assert two.outcome[1] == (SUSPECT, 0)
    early = Replay(LIM, level(0, 500.0), 0)
    feed_all(early, low[:3])
    early.finish()
    assert early.new == []
    assert early.outcome[2] == (SUSPECT, 0)
    three = Replay(LIM, level(0, 500.0), 0)
    feed_all(three, low)
    three.finish()
    assert [e.key for e in three.new] == [0]
    assert three.new[0].reason == "counter_reset"
    assert [three.outcome[k] for k in range(4)] == [(GOOD, 1)] * 4


def test_replay_a_suspect_that_fits_neither_restarts_the_run() -> None:
    replay = Replay(LIM, level(0, 500.0), 0)
    feed_all(replay, [(60, 1.0, 0.0), (120, 0.5, 0.0), (180, 0.5, 0.0)])
    replay.finish()
    assert [replay.outcome[k][0] for k in range(3)] == [GLITCH, SUSPECT, SUSPECT]
    assert replay.run is not None
    assert replay.run.start_at == T0 + timedelta(seconds=120)


def test_late_readings_without_slack_between_neighbours() -> None:
    a, b = Anchor(0.0, 100.0, 5.0), Anchor(1000.0, 101.0, 5.0)
    assert late_fits(500.0, 100.5, 5.0, a, b, R)
    assert not late_fits(500.0, 101.5, 5.0, a, b, R)  # above the next one
    assert not late_fits(500.0, 99.9, 5.0, a, b, R)  # below the previous one
    assert not late_fits(1.0, 100.0 + R + S / 2, 5.0, a, None, R)  # faster than the largest power
    assert late_fits(1.0, 100.0 + R, 5.0, a, None, R)
    assert not late_fits(999.0, 101.0 - R * 1.5, 5.0, None, b, R)
    assert late_fits(500.0, 100.5, 5.0, None, None, R)


def _dropping(every_s: int) -> list[tuple[float, float, float]]:
    """An hour of readings every 10 s whose counter drops by 1 kWh every ``every_s`` and then stays."""
    value, rows = 1e5, []
    for k in range(1, 3601, 10):
        if (k - 1) % every_s == 0:
            value -= 1
        rows.append((float(k), value, 0.0))
    return rows


def test_epoch_starts_are_more_than_five_minutes_apart() -> None:
    """A counter that drops and then persists every 310 s: each drop becomes an epoch (a run lasting
    300 s), at most 3600 / 300 + 1 in the hour, starts more than 300 s apart. Dropping every 100 s,
    no run lasts: no epoch at all."""
    persisting = Replay(LIM, level(0, 1e5 + 1), 0)
    rows = _dropping(310)
    feed_all(persisting, rows)
    starts = [rows[e.key][0] for e in persisting.new]
    assert 10 <= len(starts) <= 3600 / 300 + 1
    assert all(b - a > 300 for a, b in pairwise(starts))
    restless = Replay(LIM, level(0, 1e5 + 1), 0)
    feed_all(restless, _dropping(100))
    assert restless.new == []
