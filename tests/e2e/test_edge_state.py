"""The edge watched from the server: simulator → ``p1-edge run`` → ``p1-ingest serve`` → ``p1-query serve``,
all real processes. The edge's report of itself rides along with its uploads; ingest's ``/metrics`` and
query's ``/v1/devices`` show it for the device, with nothing connecting to the edge. The edge's own
``/metrics`` (for the LAN) stays."""

from datetime import datetime
from typing import Any

import pytest
from e2e_kit import Stack, StackFactory, metric_sum

from p1_edge.report import edge_version
from p1_servicekit.testing import wait_until

pytestmark = pytest.mark.timeout(150)


def edge_of(stack: Stack) -> dict[str, Any] | None:
    r = stack.query_get("/v1/devices")
    assert r.status_code == 200, r.text
    (device,) = [d for d in r.json() if d["device_id"] == stack.device]
    edge: dict[str, Any] | None = device["edge"]
    return edge


def reported(stack: Stack, name: str) -> float | None:
    """The device's ``name`` on ingest's /metrics, None while it has no such series."""
    text = stack.ingest_metrics()
    if f'{name}{{device_id="{stack.device}"}}' not in text:
        return None
    return metric_sum(text, name, device_id=stack.device)


def test_the_edge_reports_itself_through_ingest_and_query(
    database_url: str, redis_url: str, make_stack: StackFactory
) -> None:
    stack: Stack = make_stack(database_url, redis_url=redis_url).start()
    assert stack.sim is not None
    stack.wait_streaming(3)

    # Ingest shows the spool depth of the device (the batch it came with counted: at least 1).
    depth = wait_until(
        lambda: reported(stack, "p1_edge_report_spool_depth"), 30, "the edge's report on ingest"
    )
    assert depth >= 1
    edge = wait_until(lambda: edge_of(stack), 30, "the edge's report in /v1/devices")
    assert edge["version"] == edge_version() == "0.1.0"
    assert edge["spool_depth"] >= 1
    assert edge["uptime_s"] > 0
    assert edge["quarantined"] == 0
    assert edge["spool_dropped"] == 0
    assert isinstance(edge["meter_errors"], int)
    # The Pi's own /metrics stays for the LAN.
    assert "p1_edge_spool_depth" in stack.edge_metrics()

    # The meter refuses for a while (its API switched off): failed polls. Once it answers again, the
    # next upload carries them.
    stack.quiesce_meter()
    errors = metric_sum(stack.edge_metrics(), "p1_edge_polls_total", result="needs_user")
    assert errors >= 1
    stack.sim.faults(api_disabled=False)
    wait_until(
        lambda: (reported(stack, "p1_edge_report_meter_errors_total") or 0) >= errors,
        60,
        f"ingest to show at least {errors} meter errors\n{stack.logs()}",
        step_s=0.5,
    )

    # After the edge stops, ingest and query show the same, last report.
    assert stack.terminate_edge() == 0
    last = edge_of(stack)
    assert last is not None
    assert reported(stack, "p1_edge_report_spool_depth") == last["spool_depth"]
    assert reported(stack, "p1_edge_report_meter_errors_total") == last["meter_errors"] >= errors
    at = datetime.fromisoformat(last["reported_at"]).timestamp()
    assert reported(stack, "p1_edge_report_timestamp_seconds") == pytest.approx(at, abs=1e-3)
    assert reported(stack, "p1_edge_report_uptime_seconds") == pytest.approx(last["uptime_s"])
