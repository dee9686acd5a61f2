"""A real scrape: Debian's Prometheus scrapes running ingest, query and edge processes.

Starts `p1-ingest serve`, `p1-query serve`, `p1-edge simulate` and `p1-edge run` on free ports of
127.0.0.1 (a throwaway database migrated by the ingest migrations, the machine's Redis), then a
Prometheus with a 1 s scrape interval and the project's real alert rules, makes some traffic, and
asserts through Prometheus' HTTP API that every target is up, the rules loaded, and the key series
exist with sane values. Every wait polls against a deadline.
"""

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from p1_servicekit.testing import wait_until

HINT = "apt-get install prometheus"
# What a check raises while the stack is still coming up: no answer yet, or not the answer yet.
NOT_YET = (httpx.HTTPError, AssertionError, KeyError, IndexError, ValueError)
T = TypeVar("T")
DEVICE = "scrape-meter"
DEVICE_TOKEN = "scrape-device-token"
READ_TOKEN = "scrape-read-token"


def poll(check: Callable[[], T], timeout_s: float, what: str, step_s: float = 0.5) -> T:
    """``wait_until`` for a scrape: errors while targets come up count as "not yet"."""
    return wait_until(check, timeout_s, what, step_s, ignoring=NOT_YET)


class Stack:
    def __init__(self, tmp: Path, prometheus: str) -> None:
        self.tmp = tmp
        self.prometheus_exe = prometheus
        self.procs: list[Any] = []
        self.ports: dict[str, int] = {}
        self.database_url = ""

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, tool: Callable[[str, str], str], root: Path
) -> Iterator[Stack]:
    prometheus = tool("prometheus", HINT)
    testing = pytest.importorskip("p1_servicekit.testing")
    testing_db = pytest.importorskip("p1_servicekit.testing_db")
    migrate_mod = pytest.importorskip("p1_schema.migrate")
    for exe in ("p1-ingest", "p1-query", "p1-edge"):
        if not Path(testing.console_script(exe)).exists():
            pytest.skip(f"{exe} is not installed in this venv")
    tmp = tmp_path_factory.mktemp("scrape")
    st = Stack(tmp, prometheus)
    st.database_url = asyncio.run(testing_db.create_database(testing_db.pg_server_url(), "p1_scrape"))
    try:
        asyncio.run(migrate_mod.migrate(st.database_url))
        redis_base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
        server_env = {
            "DATABASE_URL": st.database_url,
            "REDIS_URL": f"{redis_base}/11",
            "DEVICE_TOKENS": f"{DEVICE_TOKEN}:{DEVICE}",
            "READ_TOKENS": f"{READ_TOKEN}:*",
            "LOG_LEVEL": "WARNING",
        }
        for name in ("ingest", "query", "meter", "edge", "prometheus"):
            st.ports[name] = testing.free_port()
        st.ports["edge_metrics"] = testing.free_port()
        ingest, query = (
            testing.ServiceProcess(
                [
                    testing.console_script(f"p1-{name}"),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(st.ports[name]),
                ],
                server_env,
                st.ports[name],
            )
            for name in ("ingest", "query")
        )
        meter = testing.ServiceProcess(
            [
                testing.console_script("p1-edge"),
                "simulate",
                "--host",
                "127.0.0.1",
                "--port",
                str(st.ports["meter"]),
                "--api",
                "v1",
                "--serial",
                DEVICE,
            ],
            {},
            st.ports["meter"],
            ready_path="/api",
        )
        edge = testing.ServiceProcess(
            [testing.console_script("p1-edge"), "run"],
            {
                "P1_HOST": f"127.0.0.1:{st.ports['meter']}",
                "P1_API": "v1",
                "INGEST_URL": f"http://127.0.0.1:{st.ports['ingest']}",
                "DEVICE_TOKEN": DEVICE_TOKEN,
                "DEVICE_ID": DEVICE,
                "POLL_INTERVAL_S": "1",
                "UPLOAD_BATCH_MAX": "100",
                "SPOOL_PATH": str(tmp / "spool.sqlite"),
                "METRICS_PORT": str(st.ports["edge_metrics"]),
                "LOG_LEVEL": "WARNING",
            },
            st.ports["edge_metrics"],
            ready_path="/healthz",
        )
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(root / "deploy/prometheus/rules/p1-alerts.yml")],
            "scrape_configs": [
                {
                    "job_name": "p1-ingest",
                    "static_configs": [{"targets": [f"127.0.0.1:{st.ports['ingest']}"]}],
                },
                {"job_name": "p1-query", "static_configs": [{"targets": [f"127.0.0.1:{st.ports['query']}"]}]},
                {
                    "job_name": "p1-edge",
                    "static_configs": [{"targets": [f"127.0.0.1:{st.ports['edge_metrics']}"]}],
                },
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        prom = testing.ServiceProcess(
            [
                prometheus,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{st.ports['prometheus']}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                "--log.level=warn",
            ],
            {},
            st.ports["prometheus"],
            ready_path="/-/ready",
        )
        for proc in (ingest, query, meter, edge, prom):
            st.procs.append(proc)
            proc.start(timeout_s=60)
        yield st
    finally:
        st.stop()
        asyncio.run(testing_db.drop_database(st.database_url))


def prom_query(st: Stack, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"http://127.0.0.1:{st.ports['prometheus']}/api/v1/query", params={"query": expr}, timeout=5
    )
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def test_all_targets_up(stack: Stack) -> None:
    def all_up() -> dict[str, str] | None:
        r = httpx.get(f"http://127.0.0.1:{stack.ports['prometheus']}/api/v1/targets", timeout=5)
        active = r.json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in active}
        return health if health == {"p1-ingest": "up", "p1-query": "up", "p1-edge": "up"} else None

    poll(all_up, 60, "all three targets up")
    # and `up` as a series
    up = poll(lambda: prom_query(stack, 'up{job=~"p1-.*"} == 1'), 30, "up == 1 series")
    assert {s["metric"]["job"] for s in up} == {"p1-ingest", "p1-query", "p1-edge"}


def test_key_series_after_traffic(stack: Stack) -> None:
    auth = {"Authorization": f"Bearer {READ_TOKEN}"}
    base = f"http://127.0.0.1:{stack.ports['query']}"
    # the edge uploads by itself; wait until query sees the device, then read it a few times
    poll(
        lambda: httpx.get(f"{base}/v1/devices/{DEVICE}/realtime", headers=auth, timeout=5).status_code == 200,
        60,
        "the edge's readings through query",
    )
    for _ in range(5):
        httpx.get(f"{base}/v1/devices", headers=auth, timeout=5).raise_for_status()
        httpx.get(f"{base}/v1/devices/{DEVICE}/realtime", headers=auth, timeout=5).raise_for_status()

    accepted = poll(
        lambda: prom_query(stack, 'p1_ingest_samples_total{result="accepted"} > 0'), 60, "accepted samples"
    )
    assert value(accepted[0]) >= 1

    last = poll(
        lambda: prom_query(stack, f'p1_device_last_sample_timestamp_seconds{{device_id="{DEVICE}"}}'),
        30,
        "per-device last sample timestamp",
    )
    assert abs(value(last[0]) - time.time()) < 120, "a unix time in seconds, and recent"

    def services_counting() -> set[str] | None:
        rows = prom_query(stack, 'sum by (service) (p1_http_requests_total{status=~"2.."}) > 0')
        names = {r["metric"].get("service", "") for r in rows}
        return names if {"ingest", "query"} <= names else None

    poll(services_counting, 30, "2xx request counters of both services")

    latency = poll(
        lambda: prom_query(stack, "sum by (service) (p1_http_request_duration_seconds_count)"),
        30,
        "latency histogram",
    )
    assert all(value(s) > 0 for s in latency)

    for expr, what in [
        ("p1_edge_uploaded_samples_total > 0", "edge uploaded samples"),
        ("sum(p1_edge_polls_total) > 0", "edge polls"),
        ("p1_edge_spool_depth >= 0", "edge spool depth"),
        ("p1_edge_last_upload_timestamp_seconds > 0", "edge last upload time"),
        ("sum(p1_edge_upload_batches_total) > 0", "edge upload batches"),
        ("p1_ingest_batch_size_count > 0", "ingest batch size histogram"),
        ("p1_ingest_db_write_seconds_count > 0", "ingest db write histogram"),
    ]:
        poll(lambda expr=expr: prom_query(stack, expr), 30, what)


def test_alert_rules_load_and_edge_is_not_offline(stack: Stack) -> None:
    def rules() -> list[dict[str, Any]] | None:
        r = httpx.get(f"http://127.0.0.1:{stack.ports['prometheus']}/api/v1/rules", timeout=5)
        groups: list[dict[str, Any]] = r.json()["data"]["groups"]
        return groups or None

    groups = poll(rules, 30, "rule groups loaded")
    alerts = {r["name"]: r for g in groups for r in g["rules"]}
    assert "P1EdgeOffline" in alerts
    assert all(r["health"] in {"ok", "unknown"} for r in alerts.values()), alerts
    poll(
        lambda: prom_query(stack, f'p1_device_last_sample_timestamp_seconds{{device_id="{DEVICE}"}}'),
        60,
        "device series",
    )
    # evaluated on live data: the device is sending, so the offline expression is empty
    assert prom_query(stack, alerts["P1EdgeOffline"]["query"]) == []


def test_every_binding_metric_is_scraped(stack: Stack, known_metrics: frozenset[str]) -> None:
    """The metric names alerts and dashboards rely on (docs/design.md §12) all reach Prometheus."""

    def missing() -> set[str]:
        r = httpx.get(f"http://127.0.0.1:{stack.ports['prometheus']}/api/v1/label/__name__/values", timeout=5)
        names = set(r.json()["data"])
        return {n for n in known_metrics if n not in names and f"{n}_bucket" not in names}

    def none_missing() -> bool:
        gone = missing()
        assert not gone, f"not scraped: {sorted(gone)}"
        return True

    poll(none_missing, 60, "every binding metric name")
