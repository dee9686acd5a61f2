"""Issue 11 §4: secrets stay secret. The stack holds known secrets in every configuration path (each
device token, the read tokens, the DATABASE_URL password); configuration and connection errors are
triggered through the real console scripts, every path a token travels is exercised against the running
services, and every byte of their output — logs from start-up on, error bodies, /metrics, /readyz — is
scanned with ``assert_no_secret``. services/*/tests/test_secrets.py hold the exhaustive forms (every
malformed entry, wrong passwords, Redis passwords)."""

import subprocess
from urllib.parse import quote

import pytest
from hostile_kit import (
    DB_PASSWORD,
    READ_ALL,
    READ_RANGE,
    SECRETS,
    WRITE_TOKENS,
    Meter,
    Stack,
    auth,
    batch,
    device_tokens,
    read_tokens,
)

from p1_config.errors import CONFIG_EXIT
from p1_servicekit.testing import assert_no_secret, console_script, free_port

TOKEN = WRITE_TOKENS["h-token"]


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env}, capture_output=True, text=True, timeout=60
    )


def _unreachable_db() -> str:
    return f"postgresql://app:{quote(DB_PASSWORD, safe='')}@127.0.0.1:{free_port()}/p1"


@pytest.mark.parametrize(
    "tokens",
    [
        f"{device_tokens()},{TOKEN}",
        f"{TOKEN}:h token,{device_tokens()}",
        f"sha256:{TOKEN}:h-token",
    ],
    ids=["entry without a device", "a device id with a space", "sha256: with a plain token"],
)
def test_a_malformed_device_tokens_entry_prints_no_token(tokens: str) -> None:
    argv = [console_script("p1-ingest"), "serve", "--port", str(free_port())]
    done = _run(argv, {"DEVICE_TOKENS": tokens, "DATABASE_URL": _unreachable_db()})
    assert done.returncode == CONFIG_EXIT, done.stderr
    assert "DEVICE_TOKENS entry" in done.stderr
    assert_no_secret({"stdout": done.stdout, "stderr": done.stderr}, SECRETS)


@pytest.mark.parametrize(
    "tokens",
    [f"{read_tokens()},{READ_ALL}", f"{READ_RANGE}:h range|*,{read_tokens()}"],
    ids=["entry without a scope", "a scope with a space"],
)
def test_a_malformed_read_tokens_entry_prints_no_token(tokens: str) -> None:
    argv = [console_script("p1-query"), "serve", "--port", str(free_port())]
    done = _run(argv, {"READ_TOKENS": tokens, "DATABASE_URL": _unreachable_db()})
    assert done.returncode == CONFIG_EXIT, done.stderr
    assert "READ_TOKENS entry" in done.stderr
    assert_no_secret({"stdout": done.stdout, "stderr": done.stderr}, SECRETS)


@pytest.mark.parametrize(
    "url", [_unreachable_db(), f"postgresql://app:{DB_PASSWORD}@db/p1"], ids=["unreachable", "unencoded"]
)
def test_a_bad_database_url_is_reported_without_its_password(url: str) -> None:
    done = _run([console_script("p1-ingest"), "migrate"], {"DATABASE_URL": url})
    assert done.returncode in (1, CONFIG_EXIT), done.stderr
    assert "DATABASE_URL" in done.stderr or "***" in done.stderr
    assert "Traceback" not in done.stderr
    assert_no_secret({"stdout": done.stdout, "stderr": done.stderr}, SECRETS)


def test_no_secret_reaches_any_output_of_the_running_stack(stack: Stack) -> None:
    """Every path a token travels: accepted, refused, on the wrong service, malformed. Tokens sent as
    data (a device id, a month) come back in their own 404/422 as the client's own words, so those
    answers are not scanned; what the services log or count of them is."""
    meter = Meter("h-token")
    outputs: dict[str, str | bytes] = {}
    for i, token in enumerate(SECRETS):
        as_credentials = [
            stack.to_ingest.post(
                "/v1/samples", content=batch("h-token", meter.readings(1)), headers=auth(token)
            ),
            stack.to_ingest.post("/v1/samples", content=b"{", headers=auth(token + "x")),
            stack.to_query.get("/v1/devices", headers=auth(token)),
            stack.to_query.get("/v1/devices", headers={"Authorization": token}),
            stack.to_query.get("/v1/devices/h-token/realtime", headers=auth(token + "x")),
            stack.to_query.get("/v1/devices/h-token/realtime", headers={"Authorization": f"Basic {token}"}),
        ]
        as_data = [
            stack.to_ingest.post("/v1/samples", content=batch(token, meter.readings(1)), headers=auth(TOKEN)),
            stack.to_ingest.post(
                "/v1/samples", content=b'{"device_id":"' + token.encode(), headers=auth(TOKEN)
            ),
            stack.to_query.get(f"/v1/devices/{quote(token, safe='')}/realtime", headers=auth(READ_ALL)),
            stack.to_query.get(
                "/v1/devices/h-token/capacity", params={"month": token}, headers=auth(READ_ALL)
            ),
        ]
        for k, r in enumerate(as_credentials + as_data):
            assert r.status_code < 500, r.text
            if k < len(as_credentials):
                outputs[f"answer {i}.{k}"] = r.content + str(r.headers).encode()
    for name, client in (("ingest", stack.to_ingest), ("query", stack.to_query)):
        outputs[f"{name} metrics"] = client.get("/metrics").content
        outputs[f"{name} readyz"] = client.get("/readyz").content
    outputs["ingest log"] = stack.ingest.log_path.read_bytes()
    outputs["query log"] = stack.query.log_path.read_bytes()
    # The logs were captured from start-up on: their showing no secret below means something.
    assert b"Application startup complete" in outputs["query log"]
    assert b"Application startup complete" in outputs["ingest log"]
    assert_no_secret(outputs, SECRETS)
