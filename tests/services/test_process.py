"""Both services as users run them: a real uvicorn process over HTTP, started by the service's own CLI.

What the shared shell (p1_servicekit, p1_config) gives each of them is checked once, for both: health,
readiness with and without its database, metrics, its own part of the spec, and refusing to start
without its token table (one line naming the variable, exit 2).
"""

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port, log_records, logged

SECRET = "pw-of-the-db-4711"
UNREACHABLE = "database unreachable at start-up; connecting on demand"


@dataclass(frozen=True)
class Service:
    name: str
    tokens_variable: str
    tokens: str  # a valid table for it
    own_path: str  # a path of its part of openapi.yaml
    other_path: str  # a path of the other service's part

    def process(self, database_url: str, **env: str) -> ServiceProcess:
        port = free_port()
        return ServiceProcess(
            [console_script(f"p1-{self.name}"), "serve", "--port", str(port)],
            {"DATABASE_URL": database_url, self.tokens_variable: self.tokens, "LOG_LEVEL": "INFO", **env},
            port,
        )


SERVICES = [
    Service("ingest", "DEVICE_TOKENS", "tok-1:dev-1", "/v1/samples", "/v1/devices"),
    Service("query", "READ_TOKENS", "tok-1:dev-1|dev-2", "/v1/devices", "/v1/samples"),
]


@pytest.fixture(scope="module", params=SERVICES, ids=lambda s: s.name)
def running(request: pytest.FixtureRequest, database_url: str) -> Iterator[tuple[Service, ServiceProcess]]:
    service: Service = request.param
    proc = service.process(database_url).start()
    yield service, proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def test_health_ready_and_metrics(running: tuple[Service, ServiceProcess]) -> None:
    service, proc = running
    assert httpx.get(proc.base_url + "/healthz").json() == {"status": "ok", "checks": {}}
    ready = httpx.get(proc.base_url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok"}
    metrics = httpx.get(proc.base_url + "/metrics").text
    route = f'p1_http_requests_total{{method="GET",route="/readyz",service="{service.name}",status="200"}}'
    assert route in metrics


def test_serves_its_part_of_the_spec(running: tuple[Service, ServiceProcess]) -> None:
    service, proc = running
    spec = httpx.get(proc.base_url + "/openapi.json").json()
    assert service.own_path in spec["paths"]
    assert service.other_path not in spec["paths"]


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_not_ready_while_the_database_is_unreachable_and_says_so(service: Service, log_format: str) -> None:
    """Also LOG_FORMAT: the warning is a JSON object by default, one readable line with ``text``; the
    database's address is a field of it either way, its password masked."""
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{free_port()}/none"
    proc = service.process(url, LOG_FORMAT=log_format)
    proc.ready_path = "/healthz"
    proc.start()
    try:
        r = httpx.get(proc.base_url + "/readyz", timeout=10)
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "checks": {"postgres": "unavailable"}}
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()
    logs, masked = proc.logs(), url.replace(SECRET, "***")
    assert SECRET not in logs
    if log_format == "json":
        assert logged(logs, UNREACHABLE, logger="p1_servicekit.db", level="warning", database=masked), logs
    else:
        assert log_records(logs) == []
        assert f' WARNING p1_servicekit.db: {UNREACHABLE} database="{masked}" error="' in logs, logs


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_refuses_to_start_without_its_token_table(service: Service) -> None:
    done = subprocess.run(
        [console_script(f"p1-{service.name}"), "serve", "--port", str(free_port())],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"p1-{service.name}: configuration error:",
        f"  {service.tokens_variable}: Field required",
    ]
