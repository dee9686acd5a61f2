"""Header floods (issue 11: these held; kept standing): the request line and headers together are
bounded by HTTP_MAX_HEAD_BYTES (32 KiB by default), however they are spread — many small headers, one
huge header, a huge URL — with a 431 problem+json; below the bound many headers are served."""

from typing import Final

import pytest
from hostile_kit import WRITE_TOKENS, Meter, Stack, assert_problem, batch, post, still_works, writes_nothing

DEVICE = "h-flood"
TOKEN = WRITE_TOKENS[DEVICE]
LIMIT: Final = 32 * 1024
SERVICES: Final = ["ingest", "query"]


@pytest.fixture(scope="module")
def meter() -> Meter:
    return Meter(DEVICE)


def _many(count: int) -> dict[str, str]:
    return {f"X-Flood-{i:05d}": "v" * 8 for i in range(count)}


@pytest.mark.parametrize("service", SERVICES)
def test_many_small_headers_beyond_the_bound_are_431(stack: Stack, service: str) -> None:
    headers = _many(2000)
    assert sum(len(k) + len(v) + 4 for k, v in headers.items()) > LIMIT
    client = stack.to_ingest if service == "ingest" else stack.to_query
    assert_problem(client.get("/healthz", headers=headers), 431)
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("service", SERVICES)
def test_many_headers_within_the_bound_are_served(stack: Stack, service: str) -> None:
    client = stack.to_ingest if service == "ingest" else stack.to_query
    assert client.get("/healthz", headers=_many(500)).status_code == 200


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("size", [LIMIT + 1, 1024 * 1024])
def test_one_huge_header_is_431(stack: Stack, service: str, size: int) -> None:
    client = stack.to_ingest if service == "ingest" else stack.to_query
    body = assert_problem(client.get("/healthz", headers={"X-Huge": "h" * size}), 431)
    assert f"larger than {LIMIT} bytes" in body["detail"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_huge_url_is_431(stack: Stack, service: str) -> None:
    client = stack.to_ingest if service == "ingest" else stack.to_query
    assert_problem(client.get("/healthz", params={"q": "u" * (LIMIT + 10)}), 431)


def test_a_flood_on_an_upload_writes_nothing(stack: Stack, meter: Meter) -> None:
    with writes_nothing(stack, DEVICE):
        assert_problem(post(stack, batch(DEVICE, meter.readings(2)), TOKEN, _many(2000)), 431)
    still_works(stack, meter)
