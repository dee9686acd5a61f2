"""Security properties of the running services, over HTTP against real processes.

- a device token writes only its device and reads nothing;
- a read token sees only its devices: another device is 404 exactly like one that does not exist;
- tokens never appear in logs or metrics, whatever is sent;
- request heads are bounded in size and in time (slowloris), bodies in size and in time.
"""

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port

WRITE_A, WRITE_B = "sec-write-a-7f3c9e", "sec-write-b-1d8a4b"
READ_A, READ_ALL = "sec-read-a-5e2f0c", "sec-read-all-9b6d31"
TOKENS = (WRITE_A, WRITE_B, READ_A, READ_ALL)
HEAD_TIMEOUT_S = 2


@dataclass
class Services:
    ingest: ServiceProcess
    query: ServiceProcess


@pytest.fixture(scope="module")
def services(database_url: str, redis_url: str) -> Iterator[Services]:
    common = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "DEBUG",  # the most talkative level must still not leak a token
        "HTTP_HEAD_TIMEOUT_S": str(HEAD_TIMEOUT_S),
    }
    ip, qp = free_port(), free_port()
    ingest = ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(ip)],
        {**common, "DEVICE_TOKENS": f"{WRITE_A}:sec-a,{WRITE_B}:sec-b", "BODY_TIMEOUT_S": "2"},
        ip,
    ).start()
    query = ServiceProcess(
        [console_script("p1-query"), "serve", "--port", str(qp)],
        {**common, "READ_TOKENS": f"{READ_A}:sec-a,{READ_ALL}:*"},
        qp,
    ).start()
    yield Services(ingest, query)
    assert query.stop() in CLEAN_EXITS, query.logs()
    assert ingest.stop() in CLEAN_EXITS, ingest.logs()


def _batch(device: str, n: int = 3) -> dict[str, object]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=n)
    return {
        "device_id": device,
        "samples": [
            {
                "ts": (start + timedelta(seconds=i)).isoformat(),
                "power_w": 100.0,
                "import_kwh": 1.0 + i / 1000,
                "export_kwh": 0.0,
            }
            for i in range(n)
        ],
    }


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_device_token_writes_only_its_own_device(services: Services) -> None:
    url = services.ingest.base_url + "/v1/samples"
    assert httpx.post(url, json=_batch("sec-a"), headers=_auth(WRITE_A)).status_code == 200
    assert httpx.post(url, json=_batch("sec-b"), headers=_auth(WRITE_B)).status_code == 200
    other = httpx.post(url, json=_batch("sec-b"), headers=_auth(WRITE_A))
    assert other.status_code == 403
    assert other.headers["content-type"] == "application/problem+json"
    # A read token is not a write token.
    assert httpx.post(url, json=_batch("sec-a"), headers=_auth(READ_ALL)).status_code == 401


def test_device_token_reads_nothing(services: Services) -> None:
    base = services.query.base_url
    for path in ("/v1/devices", "/v1/devices/sec-a/realtime"):
        r = httpx.get(base + path, headers=_auth(WRITE_A))
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"


def test_read_token_sees_only_its_devices_and_learns_nothing_of_others(services: Services) -> None:
    base = services.query.base_url
    httpx.post(services.ingest.base_url + "/v1/samples", json=_batch("sec-b"), headers=_auth(WRITE_B))
    listed = httpx.get(base + "/v1/devices", headers=_auth(READ_A)).json()
    assert [d["device_id"] for d in listed] == ["sec-a"]
    everyone = {d["device_id"] for d in httpx.get(base + "/v1/devices", headers=_auth(READ_ALL)).json()}
    assert {"sec-a", "sec-b"} <= everyone
    assert httpx.get(base + "/v1/devices/sec-a/realtime", headers=_auth(READ_A)).status_code == 200
    hidden = httpx.get(base + "/v1/devices/sec-b/realtime", headers=_auth(READ_A))
    unknown = httpx.get(base + "/v1/devices/sec-nobody/realtime", headers=_auth(READ_A))
    assert hidden.status_code == unknown.status_code == 404
    # Same shape, same words but for the id asked for: nothing tells "exists" from "not yours".
    assert hidden.json()["title"] == unknown.json()["title"]
    assert hidden.json()["detail"].replace("sec-b", "X") == unknown.json()["detail"].replace(
        "sec-nobody", "X"
    )
    assert set(hidden.headers) == set(unknown.headers)


def test_tokens_never_appear_in_logs_or_metrics(services: Services) -> None:
    # Exercise every path a token travels: accepted, refused, malformed headers, wrong service.
    for token in TOKENS:
        httpx.post(services.ingest.base_url + "/v1/samples", json=_batch("sec-a"), headers=_auth(token))
        httpx.get(services.query.base_url + "/v1/devices/sec-a/realtime", headers=_auth(token))
        httpx.get(services.query.base_url + "/v1/devices", headers={"Authorization": token})
    httpx.post(services.ingest.base_url + "/v1/samples", content=b"{", headers=_auth(WRITE_A + "x"))
    texts = {
        "ingest log": services.ingest.logs(),
        "query log": services.query.logs(),
        "ingest metrics": httpx.get(services.ingest.base_url + "/metrics").text,
        "query metrics": httpx.get(services.query.base_url + "/metrics").text,
    }
    # The logs did record these requests (at DEBUG), so their absence below means something.
    assert texts["ingest log"].count("\n") > 3
    assert texts["query log"].count("\n") > 3
    for where, text in texts.items():
        for token in TOKENS:
            assert token not in text, f"a token appears in the {where}"


def test_oversized_request_head_is_refused(services: Services) -> None:
    for base in (services.ingest.base_url, services.query.base_url):
        r = httpx.get(base + "/healthz", headers={"X-Padding": "a" * 200_000})
        assert r.status_code == 431
        assert httpx.get(base + "/healthz").status_code == 200  # and the service is fine


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def test_a_slow_client_is_cut_off(services: Services) -> None:
    """Slowloris: a request head sent a byte at a time is answered 408 and closed, not kept forever."""
    for base in (services.ingest.base_url, services.query.base_url):
        with socket.create_connection(("127.0.0.1", _port(base)), timeout=HEAD_TIMEOUT_S * 5) as s:
            started = time.monotonic()
            answer = b""
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1234567890\r\n":
                try:
                    s.sendall(bytes([byte]))
                except OSError:  # the server has closed the connection: what we wanted
                    break
                if time.monotonic() - started > HEAD_TIMEOUT_S * 5:
                    break
                s.settimeout(0.2)
                try:
                    answer += s.recv(1024)
                    break
                except TimeoutError:
                    continue
            s.settimeout(HEAD_TIMEOUT_S * 5)
            answer += s.recv(1024)
            elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert HEAD_TIMEOUT_S * 0.9 <= elapsed < HEAD_TIMEOUT_S * 5


def test_a_stalled_body_is_answered_408_and_nothing_is_written(services: Services) -> None:
    body = httpx.Request("POST", "http://x", json=_batch("sec-a")).content
    head = (
        f"POST /v1/samples HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WRITE_A}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", _port(services.ingest.base_url)), timeout=10) as s:
        s.sendall(head + body[:10])  # and then nothing more
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"application/problem+json" in answer


def test_oversized_body_is_refused_before_it_is_read(services: Services) -> None:
    r = httpx.post(
        services.ingest.base_url + "/v1/samples",
        content=b"x" * (9 * 1024 * 1024),
        headers={**_auth(WRITE_A), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
