"""Session cookies: what ``POST /v1/session`` sets so a browser need not keep the read token.

The cookie ``p1_session`` is ``v1.<fingerprint>.<expiry>.<signature>``: the fingerprint of the token's
table entry (``p1_servicekit.tokens.fingerprint``: neither the token nor its digest), the expiry in Unix
seconds and an HMAC-SHA256 of both under ``SESSION_SECRET`` (base64url, no padding). So the cookie gives
away no token, cannot be forged or prolonged without the secret, and dies with its entry: each request
looks the fingerprint up in the current token table (reloaded from its file), whose scope it then has.

It is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it) and
``Secure`` when the request came over HTTPS (directly, or as ``X-Forwarded-Proto`` from a proxy uvicorn
trusts: ``FORWARDED_ALLOW_IPS``). It is taken only on GET (and by ``DELETE /v1/session``, which needs no
credentials): with SameSite=Strict that leaves no cross-site request a cookie could authorise.
"""

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Final

from pydantic import SecretStr

from p1_servicekit.tokens import FINGERPRINT_BYTES, TokenLookup

log = logging.getLogger(__name__)

COOKIE: Final = "p1_session"
_VERSION: Final = "v1"
_SIG_BYTES: Final = 32
# A cookie longer than this is not one of ours (and is not worth an HMAC).
_MAX_LEN: Final = 128


@dataclass(frozen=True, slots=True)
class Session:
    fingerprint: bytes
    expires: int  # Unix seconds


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        return None


class SessionSigner:
    def __init__(self, secret: SecretStr | None, max_age_s: int) -> None:
        if secret is None:
            log.warning(
                "SESSION_SECRET is not set: a random key for this process; sessions end when it restarts "
                "and are refused by other workers or replicas"
            )
            key = secrets.token_bytes(32)
        else:
            key = secret.get_secret_value().encode()
        # Derived, so the configured secret itself is never the key of anything else by accident.
        self._key = hashlib.sha256(b"p1-query session key\x00" + key).digest()
        self.max_age_s = max_age_s

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:_SIG_BYTES])

    def make(self, fingerprint: bytes, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + self.max_age_s
        body = f"{_VERSION}.{_b64(fingerprint)}.{expires}"
        return f"{body}.{self._sign(body)}"

    def read(self, value: str, now: float | None = None) -> Session | None:
        """The session of a cookie value, or None: malformed, not signed by us, or expired."""
        if len(value) > _MAX_LEN:
            return None
        parts = value.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[2].isdigit():
            return None
        body = ".".join(parts[:3])
        if not hmac.compare_digest(self._sign(body), parts[3]):
            return None
        fingerprint = _unb64(parts[1])
        expires = int(parts[2])
        if fingerprint is None or len(fingerprint) != FINGERPRINT_BYTES:
            return None
        if expires <= (now if now is not None else time.time()):
            return None
        return Session(fingerprint, expires)

    def scope(self, tokens: TokenLookup, value: str) -> tuple[bytes, frozenset[str]] | None:
        """(fingerprint, scope) of a valid cookie whose token is still in the table, else None."""
        session = self.read(value)
        if session is None:
            return None
        scope = tokens.scope_of_fingerprint(session.fingerprint)
        return None if scope is None else (session.fingerprint, scope)


def set_cookie_header(value: str, max_age_s: int, secure: bool) -> str:
    flags = "; Secure" if secure else ""
    return f"{COOKIE}={value}; Max-Age={max_age_s}; Path=/; HttpOnly; SameSite=Strict{flags}"


def clear_cookie_header(secure: bool) -> str:
    flags = "; Secure" if secure else ""
    expired = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    return f"{COOKIE}=; {expired}; Path=/; HttpOnly; SameSite=Strict{flags}"
