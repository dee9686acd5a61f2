"""Bearer tokens in every shape a client can send them (issue 11: these held; kept standing). A token is
accepted only as ``Bearer <token>`` (the scheme is case-insensitive and the spaces before the token
free, RFC 9110 §11.1) with the token exactly as configured; everything else is 401 with
``WWW-Authenticate: Bearer`` (403 for a device token of another device), and nothing is written."""

import hashlib

import httpx
import pytest
from hostile_kit import (
    HASHED_DEVICE,
    HASHED_WRITE,
    READ_ALL,
    WRITE_TOKENS,
    Meter,
    Stack,
    assert_problem,
    batch,
    exchange,
    still_works,
    writes_nothing,
)

DEVICE = "h-token"
TOKEN = WRITE_TOKENS[DEVICE]
DIGEST = hashlib.sha256(HASHED_WRITE.encode()).hexdigest()

REFUSED = {
    "missing": None,
    "empty": "",
    "scheme only": "Bearer",
    "no scheme": TOKEN,
    "basic": f"Basic {TOKEN}",
    "tab": f"Bearer\t{TOKEN}",
    "token with a suffix": f"Bearer {TOKEN}x",
    "token cut short": f"Bearer {TOKEN[:-1]}",
    "token in another case": f"Bearer {TOKEN.upper()}",
    "two tokens": f"Bearer {TOKEN} {TOKEN}",
    "sha256 digest as the token": f"Bearer {DIGEST}",
    "sha256: entry as the token": f"Bearer sha256:{DIGEST}",
    "read token on ingest": f"Bearer {READ_ALL}",
    "very long": f"Bearer {'t' * 20_000}",
}
ACCEPTED = {
    "plain": f"Bearer {TOKEN}",
    "lowercase scheme": f"bearer {TOKEN}",
    "uppercase scheme": f"BEARER {TOKEN}",
    "extra spaces": f"Bearer    {TOKEN}",  # (trailing ones are the parser's: never seen by the app)
}


@pytest.fixture(scope="module")
def meter() -> Meter:
    return Meter(DEVICE)


def _post(stack: Stack, authorization: str | None, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return stack.to_ingest.post("/v1/samples", content=body, headers=headers)


@pytest.mark.parametrize("authorization", REFUSED.values(), ids=REFUSED.keys())
def test_a_malformed_or_unknown_token_is_401_on_ingest(
    stack: Stack, meter: Meter, authorization: str | None
) -> None:
    with writes_nothing(stack, DEVICE):
        r = _post(stack, authorization, batch(DEVICE, meter.readings(1)))
        assert_problem(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
    still_works(stack, meter)


@pytest.mark.parametrize("authorization", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_the_spellings_rfc_9110_allows_are_accepted(stack: Stack, meter: Meter, authorization: str) -> None:
    r = _post(stack, authorization, batch(DEVICE, meter.readings(1)))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "duplicates": 0}


@pytest.mark.parametrize("byte", [b"\x00", b"\x7f", b"\r"])
def test_a_control_byte_in_the_token_is_a_400_from_the_protocol(
    stack: Stack, meter: Meter, byte: bytes
) -> None:
    body = batch(DEVICE, meter.readings(1))
    head = (
        b"POST /v1/samples HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + byte + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with writes_nothing(stack, DEVICE):
        answer = exchange(stack.ingest.port, head + body)
    assert answer.status == 400
    assert answer.problem["detail"] == "The request is not valid HTTP/1.1."
    still_works(stack, meter)


def test_a_token_of_another_device_is_403(stack: Stack, meter: Meter) -> None:
    other = WRITE_TOKENS["h-other"]
    with writes_nothing(stack, DEVICE):
        r = _post(stack, f"Bearer {other}", batch(DEVICE, meter.readings(1)))
        body = assert_problem(r, 403)
    assert DEVICE in body["detail"]
    still_works(stack, meter)


def test_a_token_configured_only_as_its_digest_works_and_its_digest_does_not(stack: Stack) -> None:
    hashed = Meter(HASHED_DEVICE)
    assert _post(stack, f"Bearer {HASHED_WRITE}", batch(HASHED_DEVICE, hashed.readings(1))).status_code == 200
    with writes_nothing(stack, HASHED_DEVICE):
        for presented in (DIGEST, f"sha256:{DIGEST}", DIGEST.upper()):
            assert_problem(_post(stack, f"Bearer {presented}", batch(HASHED_DEVICE, hashed.readings(1))), 401)
    still_works(stack, hashed)


def test_a_token_longer_than_the_head_limit_is_431(stack: Stack, meter: Meter) -> None:
    with writes_nothing(stack, DEVICE):
        r = _post(stack, f"Bearer {'t' * 40_000}", batch(DEVICE, meter.readings(1)))
        assert_problem(r, 431)
    still_works(stack, meter)


QUERY_REFUSED = {
    "missing": None,
    "empty": "",
    "scheme only": "Bearer",
    "no scheme": READ_ALL,
    "write token on query": f"Bearer {TOKEN}",
    "read token cut short": f"Bearer {READ_ALL[:-1]}",
    "read token with a suffix": f"Bearer {READ_ALL}x",
    "very long": f"Bearer {'t' * 20_000}",
}


@pytest.mark.parametrize("authorization", QUERY_REFUSED.values(), ids=QUERY_REFUSED.keys())
@pytest.mark.parametrize("path", ["/v1/devices", f"/v1/devices/{DEVICE}/realtime"])
def test_a_malformed_or_unknown_token_is_401_on_query(
    stack: Stack, authorization: str | None, path: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    r = stack.to_query.get(path, headers=headers)
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("authorization", [f"bearer {READ_ALL}", f"Bearer   {READ_ALL}"])
def test_query_accepts_the_same_spellings(stack: Stack, authorization: str) -> None:
    r = stack.to_query.get("/v1/devices", headers={"Authorization": authorization})
    assert r.status_code == 200, r.text
