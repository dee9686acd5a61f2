"""No secret reaches any output of ``p1-query serve``: READ_TOKENS, the DATABASE_URL password and the
REDIS_URL password, through every configuration error and with the database and Redis failing."""

import subprocess
from urllib.parse import quote

import httpx
import pytest

from p1_config.errors import CONFIG_EXIT
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, assert_no_secret, console_script, free_port

READ_A, READ_ALL = "qryTokA-5e2f0c8d1a", "qryTokAll+/=77c1e0"
DB_PASSWORD = "qDbPw/+x%2F!9z"
REDIS_PASSWORD = "qRdPw/9+eXq"
SECRETS = (READ_A, READ_ALL, DB_PASSWORD, REDIS_PASSWORD)
PW, RPW = quote(DB_PASSWORD, safe=""), quote(REDIS_PASSWORD, safe="")
GOOD_TOKENS = f"{READ_A}:dev-a,{READ_ALL}:*"

CONFIG_ERRORS = [
    {"READ_TOKENS": f"{READ_A}:dev-a,{READ_ALL}"},
    {"READ_TOKENS": f"dev-a:{READ_ALL}"},  # the wrong way round: the "scope" is the token
    {"READ_TOKENS": f"{READ_A}:dev-a|*"},
    {"READ_TOKENS": f"sha256:{READ_A}:*"},
    {"DATABASE_URL": f"postgresql://app:{PW}@127.0.0.1:99999/p1"},
    {"DATABASE_URL": f"postgres-ql://app:{DB_PASSWORD}@db/p1"},
    {"REDIS_URL": f"redis://:{RPW}@127.0.0.1:port/3"},
    {"LOG_LEVEL": "chatty", "REDIS_URL": f"redis://:{RPW}@127.0.0.1:6379/3"},
]


@pytest.mark.parametrize("bad", CONFIG_ERRORS, ids=[f"{','.join(b)}{i}" for i, b in enumerate(CONFIG_ERRORS)])
def test_configuration_errors_name_the_variable_never_the_value(bad: dict[str, str]) -> None:
    env = {"PATH": "/usr/bin:/bin", "READ_TOKENS": GOOD_TOKENS, **bad}
    done = subprocess.run(
        [console_script("p1-query"), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == CONFIG_EXIT, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "p1-query: configuration error:"
    assert all(any(var in line for var in bad) for line in lines[1:]), done.stderr
    assert_no_secret({"stdout": done.stdout, "stderr": done.stderr}, SECRETS)


def test_a_running_service_never_shows_a_secret(redis_url: str) -> None:
    redis_host = redis_url.split("//", 1)[1].rsplit("/", 1)[0]  # our Redis: it has no password set
    port = free_port()
    env = {
        "DATABASE_URL": f"postgresql://app:{PW}@127.0.0.1:{free_port()}/p1",
        "REDIS_URL": f"redis://:{RPW}@{redis_host}/3",
        "READ_TOKENS": GOOD_TOKENS,
        "LOG_LEVEL": "DEBUG",
        "DB_ACQUIRE_TIMEOUT_S": "1",
    }
    proc = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(port)], env, port, ready_path="/healthz"
    ).start()
    outputs: dict[str, str | bytes] = {}
    try:
        base = proc.base_url
        outputs["readyz"] = httpx.get(base + "/readyz", timeout=10).content
        for token in (*SECRETS, READ_A + "x"):
            for path in ("/v1/devices", "/v1/devices/dev-a/realtime"):
                r = httpx.get(base + path, headers={"Authorization": f"Bearer {token}"}, timeout=20)
                assert r.status_code in (401, 404, 503), r.text
                outputs[f"{path} {r.status_code}"] = r.content + str(r.headers).encode()
        outputs["metrics"] = httpx.get(base + "/metrics").content
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()
    outputs["log"] = proc.log_path.read_bytes()
    assert b"database" in outputs["log"]  # the outage was logged: its absence below means something
    assert_no_secret(outputs, SECRETS)
