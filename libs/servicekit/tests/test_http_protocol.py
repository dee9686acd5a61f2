"""The HTTP protocol of ``p1_servicekit.serve`` in a real uvicorn process, driven over raw sockets:
every answer it gives itself is problem+json, and a response the app cut off does not keep its
connection (issue 11: stalled exports held their sockets until the client left)."""

import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p1_servicekit.http_protocol import CUT_OFF_GRACE_S
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, established_peers, free_port, wait_until

HERE = Path(__file__).parent
# The smallest receive buffer Linux grants: the client's window closes after a couple of kilobytes.
TINY_RCVBUF = 1024


@pytest.fixture(scope="module")
def server() -> Iterator[ServiceProcess]:
    port = free_port()
    code = (
        "from p1_servicekit.serve import serve; "
        f"serve('protocol_app:make_app', host='127.0.0.1', port={port})"
    )
    env = {"PYTHONPATH": str(HERE), "HTTP_HEAD_TIMEOUT_S": "5"}
    proc = ServiceProcess([sys.executable, "-c", code], env, port, ready_path="/ok").start()
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def exchange(port: int, data: bytes) -> tuple[str, dict[str, str], bytes]:
    """Sends ``data`` and reads the answer until the server closes; (status line, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return parse(answer)


def parse(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


def read_to_the_end(s: socket.socket, max_reads: int = 1000) -> None:
    for _ in range(max_reads):
        if not s.recv(65536):
            return


def assert_problem(answer: tuple[str, dict[str, str], bytes], status: int) -> None:
    line, headers, body = answer
    assert line.startswith(f"HTTP/1.1 {status} "), answer
    assert headers["content-type"] == "application/problem+json", answer
    problem = json.loads(body)
    assert problem["status"] == status
    assert set(problem) >= {"type", "title", "status", "detail"}


@pytest.mark.parametrize(
    "head",
    [
        b"GET /ok HTTP/1.1\r\nHost: x\r\nIf-None-Match: \x7f\r\n\r\n",
        b'GET /ok HTTP/1.1\r\nHost: x\r\nIf-None-Match: "a\x7fb"\r\n\r\n',
        b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nHo\x7fst: x\r\n\r\n",
        b"GET /o\x7fk HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ],
    ids=["del in If-None-Match", "del in an ETag", "nul", "del in a name", "del in the path", "length", "h2"],
)
def test_invalid_bytes_in_a_head_are_400_problem_json(server: ServiceProcess, head: bytes) -> None:
    assert_problem(exchange(server.port, head), 400)


@pytest.mark.parametrize(
    "upgrade",
    [
        b"Upgrade: websocket\r\nConnection: Upgrade, close\r\n",
        b"Upgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n",
        b"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings, close\r\n"
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
    ],
    ids=["websocket without key", "websocket", "h2c"],
)
def test_an_upgrade_request_is_served_as_plain_http(server: ServiceProcess, upgrade: bytes) -> None:
    """uvicorn handed WebSocket upgrades to the websockets library, which answered a plain-text 400
    ("missing Sec-WebSocket-Key") or an empty text/plain 403. No route is a WebSocket: it is HTTP."""
    status, _, body = exchange(server.port, b"GET /ok HTTP/1.1\r\nHost: x\r\n" + upgrade + b"\r\n")
    assert status.startswith("HTTP/1.1 200 "), status
    assert body == b"ok"
    assert "WebSocket" not in server.logs()


@pytest.mark.parametrize("path", ["/raise", "/silent"])
def test_an_app_that_fails_before_answering_gets_a_500_problem_json(
    server: ServiceProcess, path: str
) -> None:
    assert_problem(exchange(server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()), 500)


def test_a_client_that_shuts_down_its_side_mid_body_hears_503_with_retry_after(
    server: ServiceProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    status, headers, body = parse(answer)
    assert_problem((status, headers, body), 503)
    assert headers["retry-after"] == "5"
    # A whole body on the same route is answered as usual.
    whole = exchange(
        server.port, b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
    )
    assert whole[0].startswith("HTTP/1.1 200")
    assert whole[2] == b"3"


def test_a_cut_off_response_does_not_keep_its_connection(server: ServiceProcess) -> None:
    """A client that never reads: the app gives up mid-body and uvicorn closes the transport, which
    waited for the unsent buffer to drain — forever. Now the connection is aborted after the grace,
    while the client still holds its socket open."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, TINY_RCVBUF)
        s.settimeout(10)
        s.connect(("127.0.0.1", server.port))
        mine = s.getsockname()[1]
        s.sendall(b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: mine in established_peers(server.port), 5, "the server to hold the connection")
        started = time.monotonic()
        wait_until(lambda: mine not in established_peers(server.port), 15, "the server to let go of it")
        # The app's own send timeout, then the grace; not a moment before the response was cut off.
        assert time.monotonic() - started >= CUT_OFF_GRACE_S * 0.9
        with pytest.raises(ConnectionResetError):
            read_to_the_end(s)
    assert exchange(server.port, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[2] == b"ok"
