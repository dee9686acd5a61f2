"""The ingest service as users run it: a real uvicorn process over HTTP."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port


@pytest.fixture(scope="module")
def ingest(database_url: str) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(port)],
        {"DATABASE_URL": database_url, "DEVICE_TOKENS": "tok-1:dev-1", "LOG_LEVEL": "INFO"},
        port,
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def test_health_ready_and_metrics(ingest: ServiceProcess) -> None:
    assert httpx.get(ingest.base_url + "/healthz").json() == {"status": "ok", "checks": {}}
    ready = httpx.get(ingest.base_url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok"}
    metrics = httpx.get(ingest.base_url + "/metrics").text
    assert 'p1_http_requests_total{method="GET",route="/readyz",service="ingest",status="200"}' in metrics


def test_serves_its_part_of_the_spec(ingest: ServiceProcess) -> None:
    spec = httpx.get(ingest.base_url + "/openapi.json").json()
    assert "/v1/samples" in spec["paths"]
    assert "/v1/devices" not in spec["paths"]


def test_not_ready_while_the_database_is_unreachable(database_url: str) -> None:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(port)],
        {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/none", "DEVICE_TOKENS": "t:d"},
        port,
        ready_path="/healthz",
    ).start()
    try:
        r = httpx.get(proc.base_url + "/readyz", timeout=10)
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "checks": {"postgres": "unavailable"}}
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()


def test_refuses_to_start_without_device_tokens() -> None:
    import subprocess

    done = subprocess.run(
        [console_script("p1-ingest"), "serve", "--port", str(free_port())],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "device_tokens" in done.stderr.lower()


def test_migrate_is_idempotent(database_url: str) -> None:
    import subprocess

    done = subprocess.run(
        [console_script("p1-ingest"), "migrate"],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "0 migration(s) applied" in done.stdout


def _metric(text: str, prefix: str) -> float:
    """The value of the one sample line starting with ``prefix`` (0 when absent)."""
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(lines) <= 1, lines
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_several_workers_answer_metrics_for_all_of_them(database_url: str) -> None:
    """With ``--workers 2`` every scrape, whichever worker takes it, counts every worker's requests
    (prometheus_client's multiprocess mode, set up by servicekit's serve)."""
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(port), "--workers", "2"],
        {"DATABASE_URL": database_url, "DEVICE_TOKENS": "tok-w:dev-w", "LOG_LEVEL": "WARNING"},
        port,
    ).start()
    try:
        t0 = datetime(2026, 11, 1, tzinfo=UTC)
        batches = 24
        for b in range(batches):
            body = {
                "device_id": "dev-w",
                "samples": [
                    {
                        "ts": (t0 + timedelta(seconds=b * 5 + i)).isoformat(),
                        "power_w": 100.0,
                        "import_kwh": 1.0 + (b * 5 + i) / 1000,
                        "export_kwh": 0.0,
                    }
                    for i in range(5)
                ],
            }
            # A new connection each time: the kernel spreads them over both workers' accept queues.
            r = httpx.post(
                proc.base_url + "/v1/samples", json=body, headers={"Authorization": "Bearer tok-w"}
            )
            assert r.status_code == 200, r.text
        route = 'p1_http_requests_total{method="POST",route="/v1/samples",service="ingest",status="200"}'
        for _ in range(6):
            text = httpx.get(proc.base_url + "/metrics").text
            assert _metric(text, route) == batches
            assert _metric(text, 'p1_ingest_samples_total{result="accepted"}') == batches * 5
            assert (
                _metric(text, 'p1_device_last_sample_timestamp_seconds{device_id="dev-w"}')
                == (t0 + timedelta(seconds=batches * 5 - 1)).timestamp()
            )
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()
