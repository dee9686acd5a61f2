"""No secret reaches any output of ``p1-ingest serve | migrate | maintain``.

Known, distinctive secrets sit in every configuration path (DEVICE_TOKENS, the DATABASE_URL password,
the REDIS_URL password); every configuration error and every connection error we can cause is
triggered through the real console scripts; every byte of stdout, stderr, /metrics, /readyz and the
error bodies is scanned for each secret, as is and URL-encoded.
"""

import subprocess
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from p1_config.errors import CONFIG_EXIT
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, assert_no_secret, console_script, free_port
from p1_servicekit.testing_db import PgCluster

TOKEN_A, TOKEN_B = "ingTokA-7f3c9e1d5b", "ingTokB+/=9b6d31ab"
DB_PASSWORD = "dbPw-Qz8/+x%2F!4k"  # characters that URL-encode, as openssl rand -base64 makes
REDIS_PASSWORD = "rdPw-L0p/9+eXq"
SECRETS = (TOKEN_A, TOKEN_B, DB_PASSWORD, REDIS_PASSWORD)
PW = quote(DB_PASSWORD, safe="")
RPW = quote(REDIS_PASSWORD, safe="")
GOOD_TOKENS = f"{TOKEN_A}:dev-a,{TOKEN_B}:dev-b"


@pytest.fixture(scope="module")
def pw_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL that needs a password over TCP (a different one from ours: wrong password)."""
    cluster = PgCluster(password="the-right-one-x1").init().start()
    yield cluster
    cluster.remove()


def run(argv: list[str], env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script("p1-ingest"), *argv],
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def unreachable_db() -> str:
    return f"postgresql://app:{PW}@127.0.0.1:{free_port()}/p1"


CONFIG_ERRORS = [
    # malformed token tables, each holding plain tokens
    {"DEVICE_TOKENS": f"{TOKEN_A}:dev-a,{TOKEN_B}"},  # entry without a scope
    {"DEVICE_TOKENS": f"dev-a:{TOKEN_B}"},  # written the wrong way round: the "scope" is the token
    {"DEVICE_TOKENS": f"{TOKEN_A}:dev a,{TOKEN_B}:dev-b"},
    {"DEVICE_TOKENS": f"sha256:{TOKEN_A}:dev-a"},
    {"DEVICE_TOKENS": f",,{TOKEN_A}"},
    # malformed URLs with passwords
    {"DATABASE_URL": f"postgresql://app:{PW}@127.0.0.1:99999/p1"},
    {"DATABASE_URL": f"postgresql://app:{DB_PASSWORD}@db/p1"},  # not encoded: '/' ends the authority
    {"DATABASE_URL": f"mysql://app:{PW}@db/p1"},
    {"DATABASE_URL": f"postgresql://app:{PW}@[::1/p1"},
    {"REDIS_URL": f"redis://:{RPW}@127.0.0.1:port/3"},
    {"REDIS_URL": f"http://:{RPW}@127.0.0.1/3"},
    {"REDIS_URL": f"redis://:{REDIS_PASSWORD}@[::1/3"},
    # a plain wrong number next to good secrets
    {"DB_POOL_MAX": "lots", "REDIS_URL": f"redis://:{RPW}@127.0.0.1:6379/3"},
]


# Every command with every error it reads (only serve reads DEVICE_TOKENS).
CASES = [
    (command, bad)
    for command in ("serve", "migrate", "maintain")
    for bad in CONFIG_ERRORS
    if command == "serve" or set(bad) != {"DEVICE_TOKENS"}
]


@pytest.mark.parametrize(
    ("command", "bad"), CASES, ids=[f"{c}-{','.join(b)}-{i}" for i, (c, b) in enumerate(CASES)]
)
def test_configuration_errors_name_the_variable_never_the_value(command: str, bad: dict[str, str]) -> None:
    env = {"DEVICE_TOKENS": GOOD_TOKENS, "DATABASE_URL": unreachable_db(), **bad}
    argv = [command, "--port", str(free_port())] if command == "serve" else [command]
    done = run(argv, env)
    assert done.returncode == CONFIG_EXIT, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "p1-ingest: configuration error:"
    assert all(any(var in line for var in bad) for line in lines[1:]), done.stderr
    assert "Traceback" not in done.stderr
    assert_no_secret({"stdout": done.stdout, "stderr": done.stderr}, SECRETS)


@pytest.mark.parametrize("command", ["migrate", "maintain"])
def test_an_unreachable_database_is_one_line_with_the_password_masked(command: str) -> None:
    done = run([command], {"DATABASE_URL": unreachable_db()})
    assert done.returncode == 1
    assert done.stderr.startswith("p1-ingest: database postgresql://app:***@127.0.0.1:")
    assert len(done.stderr.strip().splitlines()) == 1
    assert_no_secret({"stdout": done.stdout, "stderr": done.stderr}, SECRETS)


@pytest.mark.parametrize("command", ["migrate", "maintain"])
def test_a_wrong_password_is_one_line_with_the_password_masked(command: str, pw_cluster: PgCluster) -> None:
    done = run(
        [command], {"DATABASE_URL": f"postgresql://postgres:{PW}@127.0.0.1:{pw_cluster.port}/postgres"}
    )
    assert done.returncode == 1
    assert "InvalidPasswordError" in done.stderr
    assert_no_secret({"stdout": done.stdout, "stderr": done.stderr}, SECRETS)


@pytest.mark.parametrize("database", ["unreachable", "wrong password"])
def test_a_running_service_never_shows_a_secret(database: str, pw_cluster: PgCluster, redis_url: str) -> None:
    """serve with the database down (or refusing our password) and Redis refusing or unreachable:
    start-up, /readyz, /metrics, refused and failed uploads, shutdown — at DEBUG."""
    url = unreachable_db()
    if database == "wrong password":
        url = f"postgresql://postgres:{PW}@127.0.0.1:{pw_cluster.port}/postgres"
    redis_host = redis_url.split("//", 1)[1].rsplit("/", 1)[0]  # our Redis: it has no password set
    port = free_port()
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": f"redis://:{RPW}@{redis_host}/3",
        "DEVICE_TOKENS": GOOD_TOKENS,
        "LOG_LEVEL": "DEBUG",
        "DB_ACQUIRE_TIMEOUT_S": "1",
    }
    proc = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(port)], env, port, ready_path="/healthz"
    )
    proc.start()
    outputs: dict[str, str | bytes] = {}
    try:
        base = proc.base_url
        outputs["readyz"] = httpx.get(base + "/readyz", timeout=10).content
        reading = b'{"ts":"2026-01-01T00:00:00Z","power_w":1,"import_kwh":1,"export_kwh":0}'
        batch = b'{"device_id":"dev-a","samples":[' + reading + b"]}"
        for token in (TOKEN_A, TOKEN_B, TOKEN_A + "x", DB_PASSWORD):
            r = httpx.post(
                base + "/v1/samples",
                content=batch,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                timeout=20,
            )
            assert r.status_code in (401, 403, 503), r.text
            outputs[f"answer {r.status_code}"] = r.content + str(r.headers).encode()
        bad = httpx.post(base + "/v1/samples", content=b"{", headers={"Authorization": f"Bearer {TOKEN_A}"})
        outputs["415"] = bad.content
        outputs["metrics"] = httpx.get(base + "/metrics").content
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()
    outputs["log"] = proc.log_path.read_bytes()
    assert b"database" in outputs["log"]  # the outage was logged, so its absence below means something
    assert_no_secret(outputs, SECRETS)  # including the tokens sent as bearer tokens above
