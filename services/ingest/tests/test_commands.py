"""Ingest's own commands as users run them (what both services share: tests/services/test_process.py)."""

import subprocess
from datetime import UTC, datetime, timedelta

import httpx

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port


def test_migrate_is_idempotent(database_url: str) -> None:
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
