"""Hostile requests against a real ingest process: every answer is problem+json with a 4xx (or a 503
with Retry-After), nothing is written, nothing is logged as a server error, and the device keeps
working afterwards."""

import json
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from p1_ingest.reasons import REASONS
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port, wait_until

TOKEN = "hostile-tok-3b9c"
DEVICE = "hostile-1"
HEAD_TIMEOUT_S = 1.5
RETRY_AFTER_S = 7


def start_ingest(database_url: str) -> ServiceProcess:
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "DEVICE_TOKENS": f"{TOKEN}:{DEVICE}",
        "LOG_LEVEL": "INFO",
        "HTTP_HEAD_TIMEOUT_S": str(HEAD_TIMEOUT_S),
        "RETRY_AFTER_S": str(RETRY_AFTER_S),
    }
    return ServiceProcess([console_script("p1-ingest"), "serve", "--port", str(port)], env, port).start()


@pytest.fixture(scope="module")
def ingest(database_url: str) -> Iterator[ServiceProcess]:
    proc = start_ingest(database_url)
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def reading(i: int = 0, **changes: object) -> dict[str, object]:
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10) + timedelta(seconds=i)
    return {"ts": ts.isoformat(), "power_w": 10.0, "import_kwh": 1.0 + i / 1000, "export_kwh": 0.0, **changes}


def post(proc: ServiceProcess, content: bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    return httpx.post(proc.base_url + "/v1/samples", content=content, headers=headers, timeout=30)


def assert_problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem: dict[str, object] = r.json()
    assert problem["status"] == status
    return problem


def rejected(proc: ServiceProcess, reason: str) -> float:
    for line in httpx.get(proc.base_url + "/metrics").text.splitlines():
        if line.startswith(f'p1_ingest_batches_rejected_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no rejected series for {reason}")


def raw_exchange(port: int, data: bytes, timeout_s: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


def head_of(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


def samples_head(port: int, length: int) -> bytes:
    return (
        f"POST /v1/samples HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_every_reject_reason_is_a_series_from_the_start(ingest: ServiceProcess) -> None:
    assert {"timeout", "aborted", "unavailable"} <= set(REASONS)
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    for reason in REASONS:
        assert rejected(ingest, reason) >= 0
        assert f"`{reason}`" in readme, f"README does not list the reject reason {reason}"


@pytest.mark.parametrize(
    ("name", "body", "status", "loc"),
    [
        (
            "deep",
            '{"device_id":"hostile-1","x":' + "[" * 50_000 + "]" * 50_000 + ',"samples":[R]}',
            400,
            None,
        ),
        (
            "nul",
            '{"device_id":"hostile-1","meter":{"serial":"A\\u0000B"},"samples":[R]}',
            422,
            "body.meter.serial",
        ),
        ("year 1", '{"device_id":"hostile-1","samples":[R,Y1]}', 422, "body.samples.1.ts"),
        ("twice", '{"device_id":"hostile-1","device_id":"hostile-1","samples":[R]}', 422, "body.device_id"),
    ],
)
def test_hostile_bodies_are_4xx_and_the_device_keeps_working(
    ingest: ServiceProcess, name: str, body: str, status: int, loc: str | None
) -> None:
    year1 = json.dumps(reading(1, ts="0001-01-01T00:00:00+01:00"))
    raw = body.replace("R", json.dumps(reading(0))).replace("Y1", year1).encode()
    problem = assert_problem(post(ingest, raw), status)
    if loc is not None:
        assert loc in str(problem["detail"])
    # The device is not broken by it: a normal batch of it is stored.
    ok = post(ingest, json.dumps({"device_id": DEVICE, "samples": [reading(2)]}).encode())
    assert ok.status_code == 200, ok.text
    assert "Traceback" not in ingest.logs()


def test_an_oversized_head_is_431_problem_json(ingest: ServiceProcess) -> None:
    r = httpx.get(ingest.base_url + "/healthz", headers={"X-Padding": "a" * 100_000})
    problem = assert_problem(r, 431)
    assert problem["title"] == "Request Header Fields Too Large"


def test_a_slow_head_is_408_problem_json(ingest: ServiceProcess) -> None:
    status, headers, body = head_of(raw_exchange(ingest.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"))
    assert status.startswith("HTTP/1.1 408")
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 408


def test_a_malformed_request_is_400_problem_json(ingest: ServiceProcess) -> None:
    status, headers, body = head_of(raw_exchange(ingest.port, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"))
    assert status.startswith("HTTP/1.1 400")
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 400


def test_a_client_gone_mid_body_is_no_server_error(ingest: ServiceProcess) -> None:
    before = rejected(ingest, "aborted")
    with socket.create_connection(("127.0.0.1", ingest.port), timeout=10) as s:
        s.sendall(samples_head(ingest.port, 10_000) + b'{"device_id":')
        served_after(ingest)
    wait_until(lambda: rejected(ingest, "aborted") == before + 1, 10, "the aborted request to be counted")
    logs = ingest.logs()
    assert "unhandled error" not in logs
    assert "Traceback" not in logs


def served_after(proc: ServiceProcess) -> None:
    """Returns once the server has answered a request sent after everything sent so far: by then its
    event loop has read the bytes that were already waiting on the other connection."""
    assert httpx.get(proc.base_url + "/healthz").status_code == 200


def test_shutdown_while_a_body_arrives_answers_503_with_retry_after(database_url: str) -> None:
    proc = start_ingest(database_url)
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=15) as s:
            s.sendall(samples_head(proc.port, 10_000) + b'{"device_id":"hostile-1","samples":[')
            served_after(proc)
            proc.signal(signal.SIGTERM)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        status, headers, body = head_of(answer)
        assert status.startswith("HTTP/1.1 503"), answer
        assert headers["content-type"] == "application/problem+json"
        assert headers["retry-after"] == str(RETRY_AFTER_S)
        assert json.loads(body)["status"] == 503
        assert proc.proc is not None
        proc.proc.wait(15)  # and the server stops at once, without waiting out the body
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()
    assert "Traceback" not in proc.logs()
