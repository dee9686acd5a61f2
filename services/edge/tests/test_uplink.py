"""One POST to ingest: gzip, headers, and what each answer means (pure, via httpx.MockTransport)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from edge_testkit import FakeIngest, private_ca_server_context
from tenacity import RetryCallState, wait_fixed

from p1_edge.uplink import (
    Rejected,
    Retry,
    Stored,
    TooLarge,
    Unauthorized,
    Uplink,
    Verdict,
    parse_retry_after,
)
from p1_edge.uploader import RETRY_AFTER_MAX_S, WaitRetryAfter

PAYLOAD = b'{"device_id":"d","meter":null,"samples":[]}'
BODY = gzip.compress(PAYLOAD)  # what the uploader posts: Spool.peek_gzip's payload


def uplink_answering(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[Uplink, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body, headers=headers or {})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Uplink("http://ingest.test/base/", "tok", http=http), seen


async def test_posts_gzip_with_bearer_to_v1_samples() -> None:
    uplink, seen = uplink_answering(200, b'{"accepted": 3, "duplicates": 1}')
    assert await uplink.post(BODY) == Stored(200)
    request = seen[0]
    assert str(request.url) == "http://ingest.test/base/v1/samples"
    assert request.headers["authorization"] == "Bearer tok"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["content-type"] == "application/json"
    assert gzip.decompress(request.content) == PAYLOAD


WHY = "why it failed"


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (401, Unauthorized(401, WHY)),
        (403, Unauthorized(403, WHY)),
        (413, TooLarge(WHY)),
        (400, Rejected(400, WHY, bisect=False)),
        (415, Rejected(415, WHY, bisect=False)),
        (422, Rejected(422, WHY, bisect=True)),
    ],
)
async def test_final_answers(status: int, verdict: Verdict) -> None:
    problem = {"type": "about:blank", "title": "t", "status": status, "detail": WHY}
    uplink, _ = uplink_answering(status, json.dumps(problem).encode())
    assert await uplink.post(BODY) == verdict


@pytest.mark.parametrize("status", [404, 405, 408, 429, 500, 502, 503, 504])
async def test_transient_answers_are_retry_with_retry_after(status: int) -> None:
    uplink, _ = uplink_answering(status, b"busy", {"Retry-After": "7"})
    assert await uplink.post(BODY) == Retry(f"HTTP {status}: busy", status, 7.0)


async def test_transport_error_is_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    uplink = Uplink(
        "http://ingest.test", "tok", http=httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    )
    verdict = await uplink.post(BODY)
    assert isinstance(verdict, Retry)
    assert (verdict.status, verdict.retry_after) == (None, None)
    assert "refused" in verdict.reason


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("retry_after", "expected"), [(5.0, 5.0), (None, 0.25), (10_000.0, RETRY_AFTER_MAX_S)]
)
def test_wait_honours_retry_after_and_caps_it(retry_after: float | None, expected: float) -> None:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.set_result(Retry("x", 503, retry_after))
    assert WaitRetryAfter(wait_fixed(0.25))(state) == expected


async def test_https_ingest_behind_a_private_ca_needs_ca_bundle(tmp_path: Path) -> None:
    context, ca = private_ca_server_context(tmp_path)
    ingest = await FakeIngest(tokens={"tok": "d"}, tls=context).start()
    body = (
        b'{"device_id":"d","samples":'
        b'[{"ts":"2026-01-01T00:00:00Z","power_w":1,"import_kwh":1,"export_kwh":0}]}'
    )
    trusted = Uplink(ingest.url, "tok", ca_bundle=ca)
    untrusted = Uplink(ingest.url, "tok")
    try:
        assert await trusted.post(gzip.compress(body)) == Stored(200)
        assert ingest.count("d") == 1
        refused = await untrusted.post(gzip.compress(body))
        assert isinstance(refused, Retry)
        assert "certificate" in refused.reason.lower()
    finally:
        await trusted.aclose()
        await untrusted.aclose()
        await ingest.close()
