"""Per-token rate limiting: the bucket itself, and 429 with Retry-After from a real process."""

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from p1_ingest.ratelimit import RateLimiter
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == 1  # empty: half a second to the next token, rounded up
    assert limiter.take("b") == 0  # buckets are per key
    clock.now += 0.5
    assert limiter.take("a") == 0
    assert limiter.take("a") == 1
    clock.now += 100
    assert [limiter.take("a") for _ in range(4)] == [0, 0, 0, 1]  # refills only up to the burst


def test_retry_after_covers_a_slow_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=0.1, burst=1, clock=clock)
    assert limiter.take("a") == 0
    assert limiter.take("a") == 10


@pytest.fixture(scope="module")
def limited(database_url: str) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(port)],
        {
            "DATABASE_URL": database_url,
            "DEVICE_TOKENS": "rl-a:rl-dev-a,rl-b:rl-dev-b",
            "RATE_LIMIT_PER_S": "0.05",
            "RATE_LIMIT_BURST": "2",
        },
        port,
    ).start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def _post(base: str, token: str, device: str, second: int) -> httpx.Response:
    ts = datetime.now(UTC).replace(microsecond=0, second=second).isoformat()
    body = {"device_id": device, "samples": [{"ts": ts, "power_w": 1, "import_kwh": 1, "export_kwh": 0}]}
    return httpx.post(f"{base}/v1/samples", json=body, headers={"Authorization": f"Bearer {token}"})


def test_a_token_over_its_rate_gets_429_with_retry_after_and_nothing_written(limited: ServiceProcess) -> None:
    assert _post(limited.base_url, "rl-a", "rl-dev-a", 1).status_code == 200
    assert _post(limited.base_url, "rl-a", "rl-dev-a", 2).status_code == 200
    third = _post(limited.base_url, "rl-a", "rl-dev-a", 3)
    assert third.status_code == 429
    assert third.headers["content-type"] == "application/problem+json"
    assert 1 <= int(third.headers["retry-after"]) <= 20
    # Another token is not held back by the first one's flood.
    assert _post(limited.base_url, "rl-b", "rl-dev-b", 1).status_code == 200
    # An unknown token is 401, not 429: the limit never tells a stranger anything.
    assert _post(limited.base_url, "nope", "rl-dev-a", 4).status_code == 401
    metrics = httpx.get(limited.base_url + "/metrics").text
    assert 'p1_ingest_samples_rejected_total{reason="too_many_requests"}' in metrics
