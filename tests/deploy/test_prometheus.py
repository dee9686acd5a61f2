"""deploy/prometheus: promtool check config / check rules / test rules, and the alerts promised."""

import re
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import yaml

HINT = "apt-get install prometheus"
Runner = Callable[..., CompletedProcess[str]]
REQUIRED_ALERTS = {
    "P1EdgeOffline",
    "P1EdgeSpoolGrowing",
    "P1EdgeSilent",
    "P1EdgeSpoolBacklog",
    "P1EdgeMeterErrors",
    "P1Ingest5xxRatioHigh",
    "P1IngestLatencyHigh",
    "P1DatabaseErrors",
    "P1RedisDown",
    "P1QueryCacheHitRatioLow",
}


def rules(root: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load((root / "deploy/prometheus/rules/p1-alerts.yml").read_text())
    return [r for g in data["groups"] for r in g["rules"]]


def test_promtool_check_config(root: Path, tool: Callable[[str, str], str], runner: Runner) -> None:
    res = runner([tool("promtool", HINT), "check", "config", "deploy/prometheus/prometheus.yml"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 rule files found" in res.stdout + res.stderr


def test_promtool_check_rules(root: Path, tool: Callable[[str, str], str], runner: Runner) -> None:
    res = runner([tool("promtool", HINT), "check", "rules", "deploy/prometheus/rules/p1-alerts.yml"])
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_unit_tests_of_the_alerts(
    root: Path, tool: Callable[[str, str], str], runner: Runner
) -> None:
    res = runner([tool("promtool", HINT), "test", "rules", "deploy/prometheus/tests/p1-alerts.test.yml"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout + res.stderr


def test_promtool_unit_tests_catch_a_broken_rule(
    root: Path, tmp_path: Path, tool: Callable[[str, str], str], runner: Runner
) -> None:
    """Negative control: the unit tests fail when the offline threshold changes."""
    src = (root / "deploy/prometheus/rules/p1-alerts.yml").read_text()
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules/p1-alerts.yml").write_text(src.replace("> 300", "> 3000"))
    (tmp_path / "tests").mkdir()
    test_src = (root / "deploy/prometheus/tests/p1-alerts.test.yml").read_text()
    (tmp_path / "tests/p1-alerts.test.yml").write_text(test_src)
    res = runner([tool("promtool", HINT), "test", "rules", "tests/p1-alerts.test.yml"], cwd=tmp_path)
    assert res.returncode != 0
    assert "P1EdgeOffline" in res.stdout + res.stderr


def test_required_alerts_exist_and_are_unit_tested(root: Path) -> None:
    names = {r["alert"] for r in rules(root)}
    assert names >= REQUIRED_ALERTS
    tests = (root / "deploy/prometheus/tests/p1-alerts.test.yml").read_text()
    for name in names:
        assert f"alertname: {name}" in tests, f"{name} has no promtool unit test"
    for r in rules(root):
        assert r["labels"]["severity"] in {"critical", "warning", "info"}
        assert {"summary", "description"} <= set(r["annotations"])


def test_edge_offline_alert_uses_the_per_device_timestamp(root: Path) -> None:
    offline = next(r for r in rules(root) if r["alert"] == "P1EdgeOffline")
    assert "p1_device_last_sample_timestamp_seconds" in offline["expr"]
    assert "300" in offline["expr"]


def test_rules_name_only_known_metrics(
    root: Path, known_metrics: frozenset[str], metric_base: Callable[[str], str]
) -> None:
    for r in rules(root):
        names = set(re.findall(r"\b(p1_[a-z0-9_]+)", r["expr"]))
        assert names or "up{" in r["expr"], r["alert"]
        for n in names:
            assert metric_base(n) in known_metrics, f"{r['alert']}: unknown metric {n}"


@pytest.mark.parametrize("job", ["p1-ingest", "p1-query", "p1-edge", "p1-notify"])
def test_scrape_jobs(root: Path, job: str) -> None:
    cfg = yaml.safe_load((root / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert job in jobs
    # the services label their series with `service`: a target label of that name would clash
    for sc in jobs[job].get("static_configs", []):
        assert "service" not in sc.get("labels", {})


EDGE_REPORT_ALERTS = (
    "P1EdgeSilent",
    "P1EdgeSpoolBacklog",
    "P1EdgeSpoolGrowing",
    "P1EdgeSpoolBacklogOld",
    "P1EdgeSpoolDropping",
    "P1EdgeMeterErrors",
    "P1EdgeQuarantine",
)


@pytest.mark.parametrize("alert", EDGE_REPORT_ALERTS)
def test_edge_alerts_need_no_way_in_to_the_pi(root: Path, alert: str) -> None:
    """Issue 14: the edge alerts use what ingest serves of the edges' reports, never a series scraped
    from a Pi (which may sit behind a home router)."""
    rule = next(r for r in rules(root) if r["alert"] == alert)
    names = set(re.findall(r"\b(p1_[a-z0-9_]+)", rule["expr"]))
    assert names
    assert all(n.startswith("p1_edge_report_") for n in names), (alert, names)
    assert "device_id" in rule["expr"]  # one alert per device, whichever ingest replica was scraped
