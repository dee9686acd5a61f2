"""The whole pipeline, simulator → edge → ingest → PostgreSQL → query, with process stops and crashes.

Each test ends with the simulator's list of served readings compared against the query service's raw
export: every served second stored exactly once, with its values.
"""

import time

import pytest
from e2e_kit import Stack, StackFactory, check_exactly_once, spooled, stored_seconds

pytestmark = pytest.mark.timeout(150)


def test_every_served_reading_is_stored_exactly_once_through_a_sigterm(
    database_url: str, redis_url: str, make_stack: StackFactory
) -> None:
    stack: Stack = make_stack(database_url, redis_url=redis_url).start()
    assert stack.sim is not None
    stack.wait_streaming(8)

    # SIGTERM mid-stream: polling stops at once, the batch in flight is finished (acked), the rest
    # stays committed in the spool.
    began = time.monotonic()
    assert stack.terminate_edge() == 0, stack.logs()
    assert time.monotonic() - began < 30
    edge_log = (stack.workdir / "edge.log").read_text()
    assert "SIGTERM: finishing the current batch" in edge_log
    assert "p1-edge stopped" in edge_log
    stack.sim.faults(api_disabled=True)  # no edge is polling now; nothing new from here on
    served = stack.sim.served()
    assert len(served) >= 8
    left = spooled(stack.spool)
    stored = stack.export()
    stored_ts = stored_seconds(stored)
    assert not stored_ts & set(left), "a reading acked by ingest is still in the spool"
    # The poll in flight at SIGTERM is cancelled: if the meter had already answered it, that one
    # reading was never committed. It can only be the last one served, and it is not in the spool.
    last = int(str(served[-1]["second"]))
    excused = {} if last in left or last in stored_ts else {last: "poll cancelled by SIGTERM"}

    # A restart on the same spool delivers the rest; the meter serves nothing new meanwhile.
    stack.start_edge()
    stack.drain()
    assert stack.terminate_edge() == 0
    assert check_exactly_once(served, stack.export(), excused) >= 8
