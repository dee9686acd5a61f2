"""Sign-in (POST/DELETE /v1/session), the session cookie on the API, and the dashboard's files at ``/``,
against a real query process (web_fixtures)."""

import re
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.requests import Request
from web_fixtures import (
    DEVICE,
    GONE,
    OTHER_DEVICE,
    READ,
    SIGNIN_BURST,
    TOKENS,
    WebQuery,
    cookie_of,
    publish,
    reading,
    revoked_within,
    sign_in,
    with_cookie,
)

from p1_query.session import SessionSigner
from p1_query.state import caller
from p1_query.web import CSP
from p1_servicekit.errors import Unauthorized
from p1_servicekit.tokens import fingerprint, parse_read_tokens


@pytest.fixture(scope="module")
async def has_reading(web: WebQuery, redis_client: Redis) -> None:
    await publish(redis_client, DEVICE, reading(412.0))


def _flags(set_cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in set_cookie.split(";")[1:]}


def test_sign_in_sets_a_session_cookie_that_reads_like_the_token(web: WebQuery, has_reading: None) -> None:
    r = sign_in(web.url, READ)
    assert r.status_code == 204, r.text
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith("p1_session=")
    assert {"httponly", "samesite", "path", "max-age"} <= _flags(set_cookie)
    assert "SameSite=Strict" in set_cookie
    assert "Path=/;" in set_cookie
    assert "secure" not in _flags(set_cookie)  # plain HTTP from a client, no forwarded proto
    value = cookie_of(r)
    assert READ not in value
    realtime = httpx.get(f"{web.url}/v1/devices/{DEVICE}/realtime", headers=with_cookie(value))
    assert realtime.status_code == 200, realtime.text
    assert realtime.json()["power_w"] == 412.0
    # The token's scope: another device is unknown to it, as with the bearer token.
    other = httpx.get(f"{web.url}/v1/devices/{OTHER_DEVICE}/realtime", headers=with_cookie(value))
    assert other.status_code == 404


def test_secure_when_the_request_came_over_https_through_the_proxy(web: WebQuery) -> None:
    # The test client is 127.0.0.1, the proxy uvicorn trusts by default (FORWARDED_ALLOW_IPS).
    r = sign_in(web.url, READ, **{"X-Forwarded-Proto": "https"})
    assert r.status_code == 204
    assert "secure" in _flags(r.headers["set-cookie"])
    out = httpx.delete(f"{web.url}/v1/session", headers={"X-Forwarded-Proto": "https"})
    assert out.status_code == 204
    assert "secure" in _flags(out.headers["set-cookie"])


def test_sign_out_clears_the_cookie(web: WebQuery) -> None:
    r = httpx.delete(f"{web.url}/v1/session")
    assert r.status_code == 204
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith("p1_session=;")
    for flag in ("Max-Age=0", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in set_cookie


def test_a_forged_or_altered_cookie_is_refused(web: WebQuery) -> None:
    value = cookie_of(sign_in(web.url, READ))
    version, print_, expires, sig = value.split(".")
    altered = [
        f"{version}.{print_}.{int(expires) + 3600}.{sig}",  # prolonged
        f"{version}.{print_}.{expires}.{'A' * len(sig)}",  # not our signature
        SessionSigner(None, 3600).make(fingerprint(READ)),  # signed with another key
        READ,  # the token itself is no cookie
    ]
    for cookie in altered:
        r = httpx.get(f"{web.url}/v1/devices", headers=with_cookie(cookie))
        assert r.status_code == 401, cookie
        assert r.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{web.url}/v1/devices", headers=with_cookie(value)).status_code == 200


def _request(method: str, cookie: str) -> Request:
    table = parse_read_tokens(TOKENS.replace("\n", ","))
    state = SimpleNamespace(tokens=table, sessions=SessionSigner(None, 3600))
    app: Any = SimpleNamespace(state=SimpleNamespace(query=state))
    value = state.sessions.make(fingerprint(READ))
    headers = [(b"cookie", f"p1_session={value}".encode())] if cookie else []
    return Request({"type": "http", "method": method, "headers": headers, "app": app, "path": "/"})


def test_the_cookie_is_taken_on_get_only() -> None:
    assert caller(_request("GET", "yes"))[1].scope == {DEVICE}
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        with pytest.raises(Unauthorized):
            caller(_request(method, "yes"))


def test_bad_tokens_are_refused_then_limited_per_address(web: WebQuery) -> None:
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    for n in range(SIGNIN_BURST):
        r = sign_in(web.url, f"guess-{n}", **attacker)
        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "guess" not in r.text
    limited = sign_in(web.url, "guess-more", **attacker)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["status"] == 429
    # Even the right token from that address is refused until the bucket refills: no oracle.
    assert sign_in(web.url, READ, **attacker).status_code == 429
    # Another address is not affected.
    assert sign_in(web.url, READ, **{"X-Forwarded-For": "198.51.100.9"}).status_code == 204


def test_a_body_without_a_token_is_422(web: WebQuery) -> None:
    r = httpx.post(f"{web.url}/v1/session", json={"tok": READ})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "token"]


def test_removing_the_token_ends_its_sessions(web: WebQuery) -> None:
    value = cookie_of(sign_in(web.url, GONE))
    assert httpx.get(f"{web.url}/v1/devices", headers=with_cookie(value)).status_code == 200
    kept = cookie_of(sign_in(web.url, READ))
    web.write_tokens(f"{READ}:{DEVICE}\n")
    try:
        revoked_within(web.url, value)
        assert httpx.get(f"{web.url}/v1/devices", headers=with_cookie(kept)).status_code == 200
    finally:
        web.write_tokens(TOKENS)


# ---- the dashboard's files -------------------------------------------------------------------------------

SECURITY = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _secured(r: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert r.headers.get(name) == value, name


def test_the_dashboard_is_served_at_the_root_with_its_security_headers(web: WebQuery) -> None:
    r = httpx.get(f"{web.url}/", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["cache-control"] == "no-cache"
    _secured(r)
    assert "'unsafe-inline'" not in CSP
    assert "default-src 'self'" in CSP
    assert "<script>" not in r.text  # no inline script: the CSP would refuse it
    scripts = re.findall(r'src="(/assets/[0-9a-f]{16}/js/main\.js)"', r.text)
    assert scripts, r.text
    asset = httpx.get(f"{web.url}{scripts[0]}")
    assert asset.status_code == 200
    assert asset.headers["content-type"] == "text/javascript; charset=utf-8"
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    _secured(asset)
    # Another version than this release's is not served (its files may differ).
    stale = httpx.get(f"{web.url}/assets/0123456789abcdef/app.js")
    assert stale.status_code == 404
    assert stale.headers["content-type"] == "application/problem+json"


def test_deep_links_answer_the_page_and_api_paths_stay_the_apis(web: WebQuery) -> None:
    page = httpx.get(f"{web.url}/").text
    for path in ("/now", "/today", "/history/day/2026-03-29", "/capacity", "/devices", "/signin", "/now/"):
        r = httpx.get(f"{web.url}{path}")
        assert r.status_code == 200, path
        assert r.text == page, path
        _secured(r)
    for path in ("/nowhere", "/historyx", "/v1/now"):
        assert httpx.get(f"{web.url}{path}").status_code == 404, path
    api = httpx.get(f"{web.url}/v1/devices")
    assert api.status_code == 401
    assert api.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{web.url}/healthz").json()["status"] == "ok"


def test_a_method_the_session_path_lacks_names_both_it_has(web: WebQuery) -> None:
    r = httpx.put(f"{web.url}/v1/session", json={"token": READ})
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, POST"
