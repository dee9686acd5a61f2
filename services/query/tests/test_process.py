"""The query service as users run it: a real uvicorn process over HTTP."""

from collections.abc import Iterator

import httpx
import pytest

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port


@pytest.fixture(scope="module")
def query(database_url: str) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)],
        {"DATABASE_URL": database_url, "READ_TOKENS": "tok-1:dev-1|dev-2", "LOG_LEVEL": "INFO"},
        port,
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def test_health_ready_and_metrics(query: ServiceProcess) -> None:
    assert httpx.get(query.base_url + "/healthz").json() == {"status": "ok", "checks": {}}
    ready = httpx.get(query.base_url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok"}
    metrics = httpx.get(query.base_url + "/metrics").text
    assert 'p1_http_requests_total{method="GET",route="/readyz",service="query",status="200"}' in metrics


def test_serves_its_part_of_the_spec(query: ServiceProcess) -> None:
    spec = httpx.get(query.base_url + "/openapi.json").json()
    assert "/v1/devices" in spec["paths"]
    assert "/v1/samples" not in spec["paths"]


def test_not_ready_while_the_database_is_unreachable(database_url: str) -> None:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)],
        {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/none", "READ_TOKENS": "t:*"},
        port,
        ready_path="/healthz",
    ).start()
    try:
        r = httpx.get(proc.base_url + "/readyz", timeout=10)
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "checks": {"postgres": "unavailable"}}
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()


def test_refuses_to_start_without_read_tokens() -> None:
    import subprocess

    done = subprocess.run(
        [console_script("p1-query"), "serve", "--port", str(free_port())],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "read_tokens" in done.stderr.lower()
