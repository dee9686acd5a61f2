"""Both services as users run them: a real uvicorn process over HTTP, started by the service's own CLI.

What the shared shell (p1_servicekit, p1_config) gives each of them is checked once, for both: health,
readiness with and without its database, metrics, its own part of the spec, and refusing to start
without a good token table, from its variable or its file (one line naming the variable, exit 2).
Token files changing under a running service: test_token_files.py.
"""

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    # the reference is the spec; no Swagger UI page is served (README, "HTTP API", says why)
    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert httpx.get(proc.base_url + page).status_code == 404, page


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
        f"  {service.tokens_variable} or {service.tokens_variable}_FILE is required",
    ]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_every_wrong_setting_is_one_line_naming_its_variable(service: Service) -> None:
    """A DATABASE_URL with an unencoded password, a bad number and no token table (what a newcomer's first
    `serve` may have): one line per variable, none with a value. The token table is a rule on a pair of
    variables (the table or its file), checked once each variable alone is valid: it is reported as soon
    as the other two are fixed."""

    def serve(env: dict[str, str]) -> list[str]:
        done = subprocess.run(
            [console_script(f"p1-{service.name}"), "serve", "--port", str(free_port())],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2
        assert SECRET not in done.stderr
        assert "'ten'" not in done.stderr
        assert "Traceback" not in done.stderr
        head, *problems = done.stderr.splitlines()
        assert head == f"p1-{service.name}: configuration error:"
        assert all(line.startswith("  ") for line in problems)
        return sorted(line.split()[0].rstrip(":") for line in problems)

    wrong = {"DATABASE_URL": f"postgresql://p1:{SECRET}/+x@db:5432/p1", "DB_POOL_MAX": "ten"}
    assert serve(wrong) == ["DATABASE_URL", "DB_POOL_MAX"]
    assert serve({}) == [service.tokens_variable]


TOKEN_TEXT = "tokSecret-41c9"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
@pytest.mark.parametrize(
    ("file_text", "variable", "problem"),
    [
        (f"tok-1:dev-1\n{TOKEN_TEXT}\n", False, "{v}_FILE line 2: expected <token>:<scope>"),
        ("# nothing yet\n", False, "{v}_FILE: {path} has no entry"),
        (None, False, "{v}_FILE: cannot read {path} (No such file or directory)"),
        ("tok-1:dev-1\n", True, "{v} and {v}_FILE are both set: use one of them"),
    ],
    ids=["malformed", "empty", "missing", "both"],
)
def test_refuses_to_start_without_a_good_token_file(
    service: Service, file_text: str | None, variable: bool, problem: str, tmp_path: Path
) -> None:
    path = tmp_path / "tokens"
    if file_text is not None:
        path.write_text(file_text)
    env = {"PATH": "/usr/bin:/bin", f"{service.tokens_variable}_FILE": str(path)}
    if variable:
        env[service.tokens_variable] = f"{TOKEN_TEXT}:dev-1"
    done = subprocess.run(
        [console_script(f"p1-{service.name}"), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"p1-{service.name}: configuration error:",
        "  " + problem.format(v=service.tokens_variable, path=path),
    ]
    assert TOKEN_TEXT not in done.stderr
