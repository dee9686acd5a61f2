"""``edgemetrics.render``: its own text is the Prometheus text format as prometheus_client reads it, with
every family present when no device has a report."""

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from p1_ingest.edgemetrics import render

ROW: dict[str, Any] = {
    "device_id": "3c39e7aabbcc",
    "reported_at": 1_780_000_000.25,
    "edge_spool_depth": 42,
    "edge_spool_oldest_age_s": 12.5,
    "edge_quarantined": 3,
    "edge_spool_dropped": 7,
    "edge_meter_errors": 1_000_000_000_000,
    "edge_version": "0.1.0+pi_2-rc.1",
    "edge_uptime_s": 3600.0,
}


def families(text: bytes) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


def test_render_is_read_back_exactly() -> None:
    found = families(render([ROW, {**ROW, "device_id": "other", "edge_spool_depth": 0}]))  # type: ignore[list-item]
    values = {
        (s.name, s.labels["device_id"]): s.value
        for f in found.values()
        for s in f.samples
        if s.name != "p1_edge_report_info"
    }
    assert values[("p1_edge_report_spool_depth", "3c39e7aabbcc")] == 42
    assert values[("p1_edge_report_spool_depth", "other")] == 0
    assert values[("p1_edge_report_timestamp_seconds", "3c39e7aabbcc")] == 1_780_000_000.25
    assert values[("p1_edge_report_meter_errors_total", "3c39e7aabbcc")] == 1e12
    assert found["p1_edge_report_meter_errors"].type == "counter"
    assert found["p1_edge_report_spool_dropped_samples"].type == "counter"
    (info, _) = found["p1_edge_report_info"].samples
    assert info.labels == {"device_id": "3c39e7aabbcc", "version": "0.1.0+pi_2-rc.1"}
    assert info.value == 1


def test_no_reports_still_describe_every_family() -> None:
    found = families(render([]))
    assert len(found) == 8
    assert all(not f.samples for f in found.values())
