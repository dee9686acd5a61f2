"""A database password as `openssl rand -base64` makes it (`/`, `+`, `=`) works in compose without any
encoding: compose.yaml, rendered by a real Compose, hands the database container the password raw and the
services a DATABASE_URL without it plus PGPASSWORD; the real `p1-ingest migrate`, `p1-ingest backup`
(pg_dump) and `p1-query serve`, given exactly what compose renders, connect to a PostgreSQL that wants
that password.

The renderer is Debian 12's Compose (`docker-compose` 1.29, `apt-get install docker-compose`): Compose v2
(`docker compose`) comes only from Docker's own repository, which is not reachable here. Its interpolation
rules for what compose.yaml uses (`${VAR:-default}`, `${VAR:?error}`, `.env`) are v2's; its schema predates
the top-level `name:`, which is removed from the copy it renders (check-jsonschema validates the file as it
is, test_compose.py).
"""

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port
from p1_servicekit.testing_db import PgCluster

PASSWORD = "Qm9/vZ+x3Lw=Kp/+TnE2rA=="  # what `openssl rand -base64 18` looks like, each special kind twice
HINT = "apt-get install docker-compose"
SERVICES = ("migrate", "ingest", "maintain", "backup", "query")


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    """A PostgreSQL whose role postgres has PASSWORD, as the db container's entrypoint would set it."""
    pg = PgCluster(password=PASSWORD).init().start()
    yield pg
    pg.remove()


@pytest.fixture(scope="module")
def rendered(
    root: Path, tmp_path_factory: pytest.TempPathFactory, tool: Callable[[str, str], str]
) -> dict[str, Any]:
    exe = tool("docker-compose", HINT)
    work = tmp_path_factory.mktemp("compose")
    text = re.sub(r"^name: .*\n", "", (root / "compose.yaml").read_text(), flags=re.MULTILINE)
    (work / "compose.yaml").write_text(text)
    env_file = work / ".env"
    env_file.write_text(
        f"POSTGRES_USER=postgres\nPOSTGRES_DB=postgres\nPOSTGRES_PASSWORD={PASSWORD}\n"
        "DEVICE_TOKENS=dev-token:meter-1\nREAD_TOKENS=read-token:*\n"
        "GRAFANA_DB_PASSWORD=g-pw\nGRAFANA_ADMIN_PASSWORD=a-pw\nCAPACITY_PRICE_EUR_PER_KW_YEAR=61.5\n"
    )
    argv = [
        exe,
        "--project-directory",
        str(root),
        "-f",
        str(work / "compose.yaml"),
        "--env-file",
        str(env_file),
    ]
    # a clean environment: Compose takes a variable from the shell before .env
    done = subprocess.run(
        [*argv, "config"], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    services: dict[str, Any] = yaml.safe_load(done.stdout)["services"]
    return services


def on(cluster: PgCluster, env: dict[str, Any]) -> dict[str, str]:
    """A service's rendered environment, its database host `db` pointed at the test's cluster."""
    url = urlsplit(env["DATABASE_URL"])
    assert url.hostname == "db"
    local = url._replace(netloc=f"{url.username}@127.0.0.1:{cluster.port}").geturl()
    return {**{k: str(v) for k, v in env.items()}, "DATABASE_URL": local, "REDIS_URL": ""}


def test_the_database_gets_the_password_raw_and_the_services_beside_their_url(
    rendered: dict[str, Any],
) -> None:
    assert rendered["db"]["environment"]["POSTGRES_PASSWORD"] == PASSWORD
    for name in SERVICES:
        env = rendered[name]["environment"]
        assert env["PGPASSWORD"] == PASSWORD, name
        url = urlsplit(env["DATABASE_URL"])
        assert (url.scheme, url.username, url.password, url.hostname, url.port, url.path) == (
            "postgresql",
            "postgres",
            None,
            "db",
            5432,
            "/postgres",
        )
    # a tunable set in .env arrives; one left out arrives empty, which the services read as unset
    assert rendered["query"]["environment"]["CAPACITY_PRICE_EUR_PER_KW_YEAR"] == "61.5"
    assert rendered["query"]["environment"]["REALTIME_MEMO_S"] == ""


def test_migrate_connects_with_exactly_what_compose_renders(
    rendered: dict[str, Any], cluster: PgCluster
) -> None:
    env = on(cluster, rendered["migrate"]["environment"])
    done = subprocess.run(
        [console_script("p1-ingest"), "migrate"],
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "migration(s) applied" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    # without PGPASSWORD the same URL is refused by the database: the password really came from there
    del env["PGPASSWORD"]
    refused = subprocess.run(
        [console_script("p1-ingest"), "migrate"],
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1
    assert "password" in refused.stderr.lower()


def test_the_backup_service_dumps_with_exactly_what_compose_renders(
    rendered: dict[str, Any], cluster: PgCluster, tmp_path: Path
) -> None:
    """pg_dump gets the password as the services do: PGPASSWORD, the URL having none."""
    env = on(cluster, rendered["backup"]["environment"])
    done = subprocess.run(
        [console_script("p1-ingest"), "backup", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert [p.suffix for p in tmp_path.iterdir()] == [".dump"]
    assert PASSWORD not in done.stdout + done.stderr


def test_query_serves_with_exactly_what_compose_renders(rendered: dict[str, Any], cluster: PgCluster) -> None:
    port = free_port()
    proc = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)],
        on(cluster, rendered["query"]["environment"]),
        port,
    )
    proc.start()  # ready: /readyz answered 200, so PostgreSQL accepted the password
    try:
        assert httpx.get(f"{proc.base_url}/readyz", timeout=5).status_code == 200
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()


def test_the_old_way_a_raw_password_inside_the_url_is_refused(
    runner: Callable[..., CompletedProcess[str]],
) -> None:
    """Why the password left the URL: raw inside it, `/` ends the authority."""
    done = runner(
        [console_script("p1-ingest"), "migrate"],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"postgresql://p1:{PASSWORD}@db:5432/p1"},
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[1].startswith("  DATABASE_URL: not a PostgreSQL URL")
    assert PASSWORD not in done.stderr
