"""Slowloris (issue 11: these held; kept standing): a request head trickled byte by byte is answered
408 once HTTP_HEAD_TIMEOUT_S has passed, however steadily the bytes come (each byte used to reset
uvicorn's timer); a body trickled slower than BODY_TIMEOUT_S allows is 408 and stores nothing."""

import socket
import time

import pytest
from hostile_kit import (
    BODY_TIMEOUT_S,
    HEAD_TIMEOUT_S,
    WRITE_TOKENS,
    Meter,
    Stack,
    batch,
    parse_raw,
    read_all,
    still_works,
    writes_nothing,
)

DEVICE = "h-slow"
TOKEN = WRITE_TOKENS[DEVICE]
TRICKLE_S = 0.1


@pytest.fixture(scope="module")
def meter() -> Meter:
    return Meter(DEVICE)


def _trickle(port: int, data: bytes, bound_s: float) -> tuple[bytes, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=bound_s) as s:
        return _trickle_on(s, data, bound_s)


@pytest.mark.parametrize("service", ["ingest", "query"])
def test_a_head_trickled_byte_by_byte_is_408_within_the_bound(stack: Stack, service: str) -> None:
    proc = stack.ingest if service == "ingest" else stack.query
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"1234567890" * 10 + b"\r\n\r\n"
    assert len(head) * TRICKLE_S > HEAD_TIMEOUT_S * 3  # it would take far longer than the bound
    answer, took = _trickle(proc.port, head, HEAD_TIMEOUT_S * 4)
    raw = parse_raw(answer)
    assert raw.status == 408
    assert "did not arrive within" in raw.problem["detail"]
    assert HEAD_TIMEOUT_S * 0.9 <= took < HEAD_TIMEOUT_S * 3  # the bound, with room for a busy machine
    assert (stack.to_ingest if service == "ingest" else stack.to_query).get("/healthz").status_code == 200


def test_a_body_trickled_byte_by_byte_is_408_and_stores_nothing(stack: Stack, meter: Meter) -> None:
    body = batch(DEVICE, meter.readings(3))
    head = (
        f"POST /v1/samples HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    assert len(body) * TRICKLE_S > BODY_TIMEOUT_S * 3
    with writes_nothing(stack, DEVICE):
        with socket.create_connection(("127.0.0.1", stack.ingest.port), timeout=10) as s:
            s.sendall(head)
            answer, took = _trickle_on(s, body, BODY_TIMEOUT_S * 4)
        raw = parse_raw(answer)
        assert raw.status == 408
        assert raw.headers["connection"] == "close"
        assert f"within {BODY_TIMEOUT_S:g} s" in raw.problem["detail"]
        assert BODY_TIMEOUT_S * 0.9 <= took < BODY_TIMEOUT_S * 3
    still_works(stack, meter)


def _trickle_on(s: socket.socket, data: bytes, bound_s: float) -> tuple[bytes, float]:
    """Sends ``data`` a byte every TRICKLE_S until the server answers or closes; the answer and the
    seconds it took. Bounded: after ``bound_s`` it stops sending and reads what is there."""
    started = time.monotonic()
    s.settimeout(TRICKLE_S)
    for byte in data:
        if time.monotonic() - started > bound_s:
            break
        try:
            s.sendall(bytes([byte]))
            first = s.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        s.settimeout(bound_s)
        return first + read_all(s), time.monotonic() - started
    s.settimeout(bound_s)
    return read_all(s), time.monotonic() - started
