"""Issue 11 §5: bad input is a 4xx naming the field, never a 500, and changes nothing."""

import json
import socket

import pytest
from hostile_kit import (
    RETRY_AFTER_S,
    WRITE_TOKENS,
    Meter,
    Stack,
    assert_problem,
    batch,
    exchange,
    get,
    parse_raw,
    post,
    read_all,
    still_works,
    writes_nothing,
)
from query_probes import metric

from p1_contracts import timerange
from p1_servicekit.testing import wait_until

DEVICE = "h-input"
TOKEN = WRITE_TOKENS[DEVICE]


@pytest.fixture(scope="module")
def meter(stack: Stack) -> Meter:
    m = Meter(DEVICE)
    assert post(stack, batch(DEVICE, m.readings(2)), TOKEN).status_code == 200
    return m


def test_json_nested_50000_deep_in_an_unknown_field_is_a_400(stack: Stack, meter: Meter) -> None:
    """It raised RecursionError in the decoder (a 500)."""
    good = json.dumps(meter.readings(1)[0])
    body = f'{{"device_id":"{DEVICE}","x":' + "[" * 50_000 + "]" * 50_000 + f',"samples":[{good}]}}'
    with writes_nothing(stack, DEVICE):
        problem = assert_problem(post(stack, body.encode(), TOKEN), 400)
    assert problem["detail"] == "The body is nested too deeply."
    still_works(stack, meter)


@pytest.mark.parametrize("name", ["serial", "model"])
def test_a_nul_in_the_meter_serial_or_model_is_a_422(stack: Stack, meter: Meter, name: str) -> None:
    """PostgreSQL refuses NUL in text: it was a 500."""
    meter_info = {"serial": "E0031234", "model": "HWE-P1", name: "A\u0000B"}
    with writes_nothing(stack, DEVICE):
        body = batch(DEVICE, meter.readings(1), meter=meter_info)
        assert_problem(post(stack, body, TOKEN), 422, ["body", "meter", name])
    still_works(stack, meter)


@pytest.mark.parametrize("month", ["0000-01", "0001-01", "9999-12", "1999-12", "2100-01"])
def test_a_month_outside_the_range_is_a_422_at_query_month(stack: Stack, meter: Meter, month: str) -> None:
    body = assert_problem(
        get(stack, f"/v1/devices/{DEVICE}/capacity", {"month": month}), 422, ["query", "month"]
    )
    assert timerange.MONTHS_DESCRIPTION in body["detail"]


def test_a_missing_query_parameter_is_reported_at_query_not_body(stack: Stack, meter: Meter) -> None:
    body = assert_problem(get(stack, f"/v1/devices/{DEVICE}/capacity"), 422, ["query", "month"])
    assert all(e["loc"][0] == "query" for e in body["errors"]), body


@pytest.mark.parametrize(
    ("route", "params", "loc"),
    [
        ("capacity", {"month": "2026-01\n"}, ["query", "month"]),
        ("capacity", {"month": "2026-01", "tz": "UTC\n"}, ["query", "tz"]),
        (
            "series",
            {"start": "2026-01-01T00:00:00Z\n", "end": "2026-01-02T00:00:00Z", "bucket": "1h"},
            ["query", "start"],
        ),
        (
            "series",
            {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z\n", "bucket": "1h"},
            ["query", "end"],
        ),
        (
            "series",
            {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "bucket": "1h\n"},
            ["query", "bucket"],
        ),
        (
            "export",
            {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "format": "csv\n"},
            ["query", "format"],
        ),
        (
            "export",
            {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "bucket": "raw\n"},
            ["query", "bucket"],
        ),
    ],
)
def test_a_value_with_a_trailing_newline_is_refused(
    stack: Stack, meter: Meter, route: str, params: dict[str, str], loc: list[str]
) -> None:
    """``month=2026-01%0A`` answered 200: ``$`` in a pattern also matches before a final newline."""
    assert_problem(get(stack, f"/v1/devices/{DEVICE}/{route}", params), 422, loc)


@pytest.mark.parametrize("route", ["realtime", "capacity?month=2026-01"])
def test_a_device_id_with_a_trailing_newline_is_refused(stack: Stack, meter: Meter, route: str) -> None:
    r = get(stack, f"/v1/devices/{DEVICE}%0A/{route}")
    assert_problem(r, 422, ["path", "device_id"])


def _samples_head(length: int) -> bytes:
    return (
        f"POST /v1/samples HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_client_shutdown_mid_body_is_a_503_with_retry_after(stack: Stack, meter: Meter) -> None:
    """The client shuts down its sending side before the declared length: it hears 503 problem+json
    with Retry-After (its upload was not taken), not a plain-text 500 nor silence."""
    body = batch(DEVICE, meter.readings(5))
    with writes_nothing(stack, DEVICE):
        with socket.create_connection(("127.0.0.1", stack.ingest.port), timeout=15) as s:
            s.sendall(_samples_head(len(body)) + body[: len(body) // 2])
            s.shutdown(socket.SHUT_WR)
            answer = parse_raw(read_all(s))
        assert answer.status == 503
        assert answer.headers["retry-after"] == str(RETRY_AFTER_S)
        assert "before its declared length" in answer.problem["detail"]
    still_works(stack, meter)


def test_a_client_gone_mid_body_is_no_server_error(stack: Stack, meter: Meter) -> None:
    aborted = metric(stack.ingest.base_url, 'p1_ingest_batches_rejected_total{reason="aborted"}')
    body = batch(DEVICE, meter.readings(5))
    with writes_nothing(stack, DEVICE):
        with socket.create_connection(("127.0.0.1", stack.ingest.port), timeout=15) as s:
            s.sendall(_samples_head(len(body)) + body[:20])
            assert stack.to_ingest.get("/healthz").status_code == 200  # by now the bytes are read
        wait_until(
            lambda: (
                metric(stack.ingest.base_url, 'p1_ingest_batches_rejected_total{reason="aborted"}')
                == aborted + 1
            ),
            10,
            "the aborted upload to be counted",
        )
    still_works(stack, meter)
    assert "unhandled error" not in stack.ingest.log_path.read_text()


@pytest.mark.parametrize("service", ["ingest", "query"])
def test_an_oversized_head_is_a_431_problem_json(stack: Stack, service: str) -> None:
    client = stack.to_ingest if service == "ingest" else stack.to_query
    r = client.get("/healthz", headers={"X-Padding": "a" * 100_000})
    body = assert_problem(r, 431)
    assert "larger than" in body["detail"]
    assert client.get("/healthz").status_code == 200


def test_a_head_with_a_del_byte_is_a_400_problem_json(stack: Stack) -> None:
    """An invalid byte in a header value (here in If-None-Match) is refused by the protocol itself."""
    for proc in (stack.ingest, stack.query):
        answer = exchange(
            proc.port,
            f"GET /v1/devices/{DEVICE}/realtime HTTP/1.1\r\nHost: x\r\nIf-None-Match: \x7f\r\n\r\n".encode(),
        )
        assert answer.status == 400
        assert answer.problem["detail"] == "The request is not valid HTTP/1.1."
    assert stack.to_query.get("/healthz").status_code == 200
