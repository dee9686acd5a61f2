"""Issue 11 §3: a slow client cannot hold the database, and one export is bounded in size.

Ten exports whose clients never read (the issue's first failure: they pinned the whole pool "idle in
transaction" and every other route answered 503) stay open while realtime (p99 < 50 ms), series and
capacity keep answering, none of them holds a database connection, one more is refused (429), and after
EXPORT_SEND_TIMEOUT_S each is cut off and its connection released by the server. This is the light form:
each stalled export makes ~1.7 MB before its client's buffers are full, so fifty cost ~20 s of CPU here;
the issue's figure (fifty stalled exports, realtime p99 < 50 ms) is services/query/tests/
test_export_stall.py, which runs in ``make test`` too."""

import statistics
import time
from datetime import UTC, datetime, timedelta

import pytest
from hostile_kit import (
    EXPORT_SEND_TIMEOUT_S,
    READ_ALL,
    STALLED_EXPORTS,
    WRITE_TOKENS,
    Meter,
    Stack,
    assert_problem,
    batch,
    get,
    post,
    rows,
)
from query_probes import exports, exports_active, stalled_get, wait_quiet

from p1_query.export import MAX_BUCKETS, RAW_MAX_DAYS
from p1_servicekit.http_protocol import CUT_OFF_GRACE_S
from p1_servicekit.testing import established_peers, wait_until

DEVICE = "h-export"
EXPORT = f"/v1/devices/{DEVICE}/export"
START = datetime(2024, 1, 1, tzinfo=UTC)
# 96,000 quarter-hours (~6 MB of CSV): far more than the socket buffers of a client that never reads,
# and cheap to make for a device with few readings.
LONG = {"start": START.isoformat(), "end": (START + timedelta(days=1000)).isoformat(), "bucket": "15m"}


@pytest.fixture(scope="module")
def meter(stack: Stack) -> Meter:
    m = Meter(DEVICE)
    assert post(stack, batch(DEVICE, m.readings(5)), WRITE_TOKENS[DEVICE]).status_code == 200
    return m


def _realtime_p99(stack: Stack, count: int = 100) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        r = get(stack, f"/v1/devices/{DEVICE}/realtime")
        times.append(time.perf_counter() - started)
        assert r.status_code == 200, r.text
    return statistics.quantiles(times, n=100)[98]


def _db_states(stack: Stack) -> dict[str, int]:
    found = rows(
        stack,
        "SELECT state, count(*)::int AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY state",
    )
    return {str(r["state"]): r["n"] for r in found}


def test_stalled_exports_hold_nothing_and_are_cut_off(stack: Stack, meter: Meter) -> None:
    base = stack.query.base_url
    cut_before = exports(base, "slow_client")
    # The bound is 50 ms (issue 11) or, on a machine busy with other work, 3 × realtime's p99 measured
    # just before: a pool held by the stalled exports would cost seconds (pool timeouts), not that.
    bound = max(0.050, 3 * _realtime_p99(stack))
    sockets = []
    try:
        for _ in range(STALLED_EXPORTS):
            sockets.append(stalled_get(stack.query.port, EXPORT, LONG, READ_ALL))
        wait_until(lambda: exports_active(base) == STALLED_EXPORTS, 30, "the exports to be in progress")
        wait_quiet(base, 30)  # each has filled its client's buffers and waits for it
        assert exports_active(base) == STALLED_EXPORTS  # not one has finished: they are stalled

        p99 = _realtime_p99(stack)
        assert p99 < bound, f"realtime p99 {p99 * 1000:.1f} ms with {STALLED_EXPORTS} stalled exports"
        day = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z", "bucket": "1h"}
        assert get(stack, f"/v1/devices/{DEVICE}/series", day).status_code == 200
        assert get(stack, f"/v1/devices/{DEVICE}/capacity", {"month": "2024-01"}).status_code == 200
        states = _db_states(stack)
        assert states.get("idle in transaction", 0) == 0, states
        assert states.get("active", 0) == 0, states
        refused = assert_problem(get(stack, EXPORT, LONG), 429)
        assert f"{STALLED_EXPORTS} exports are in progress for this token" in refused["detail"]

        wait_until(
            lambda: (
                exports(base, "slow_client") - cut_before == STALLED_EXPORTS and exports_active(base) == 0
            ),
            EXPORT_SEND_TIMEOUT_S + 30,
            "the stalled exports to be cut off",
        )
        clients = {s.getsockname()[1] for s in sockets}
        wait_until(
            lambda: not clients & established_peers(stack.query.port),
            CUT_OFF_GRACE_S + 10,
            "the server to let go of the cut-off connections",
        )
    finally:
        for s in sockets:
            s.close()
    whole = get(stack, EXPORT, {**LONG, "end": (START + timedelta(days=2)).isoformat()})
    assert whole.status_code == 200
    assert len(whole.text.splitlines()) == 1 + 2 * 96


@pytest.mark.parametrize(
    ("params", "loc", "says"),
    [
        (
            {"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00.000001Z"},
            "end",
            f"at most {RAW_MAX_DAYS} days",
        ),
        (
            {"start": "2024-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z", "bucket": "15m"},
            "end",
            f"at most {MAX_BUCKETS} buckets",
        ),
        (
            {"start": "2000-01-01T00:00:00Z", "end": "2099-12-31T00:00:00Z", "bucket": "1h"},
            "end",
            f"at most {MAX_BUCKETS} buckets",
        ),
        (
            {"start": "1970-01-01T00:00:00Z", "end": "2999-12-31T00:00:00Z", "bucket": "15m"},
            "start",
            "between",
        ),
    ],
)
def test_one_export_is_bounded_in_size(
    stack: Stack, meter: Meter, params: dict[str, str], loc: str, says: str
) -> None:
    body = assert_problem(get(stack, EXPORT, params), 422, ["query", loc])
    assert says in body["detail"]
    if "days" in says or "buckets" in says:
        assert "each start the previous end" in body["detail"]  # says how to page
