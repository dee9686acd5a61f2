"""Read tokens: who may see which devices. A device outside the token's scope is answered exactly as an
unknown device (404 with the same body), so a token cannot probe which device ids exist.

A caller is a bearer token, or (on GET only, see ``p1_query.session``) a session cookie made from one."""

import hashlib
from dataclasses import dataclass, field
from typing import Final

from p1_query.session import SessionSigner
from p1_servicekit.errors import NotFound, Unauthorized
from p1_servicekit.tokens import ALL_DEVICES, TokenLookup, bearer_token, fingerprint

# Keeps the key of a token (see Reader.key) apart from the sha256:<hex> digests of READ_TOKENS.
_KEY_DOMAIN: Final = b"p1-query reader key\x00"


@dataclass(frozen=True, slots=True)
class Reader:
    scope: frozenset[str]
    # The presented token itself, only to derive ``key`` and to check it is still in the table; never
    # shown (repr) nor stored. None for a session cookie, which has its entry's fingerprint instead.
    token: str | None = field(repr=False)
    fingerprint: bytes | None = field(default=None, repr=False)

    @property
    def sees_all(self) -> bool:
        return ALL_DEVICES in self.scope

    def may_see(self, device_id: str) -> bool:
        return self.sees_all or device_id in self.scope

    def key(self) -> str:
        """Who is charged for exports and cache space: a one-way name of the token, safe to keep in
        Redis and in memory; the same for the token and for its sessions. Derived on demand, so realtime
        answers never pay for it."""
        return hashlib.sha256(_KEY_DOMAIN + self.entry()).hexdigest()[:24]

    def entry(self) -> bytes:
        """The fingerprint of the token's table entry."""
        if self.fingerprint is not None:
            return self.fingerprint
        return fingerprint(self.token or "")

    def current_scope(self, table: TokenLookup) -> frozenset[str] | None:
        """The scope its token has in the table now; None once the token was removed (revoked)."""
        if self.token is not None:
            return table.scope_of(self.token)
        return table.scope_of_fingerprint(self.entry())


def authenticate(
    table: TokenLookup,
    authorization: str | None,
    cookie: str | None = None,
    sessions: SessionSigner | None = None,
) -> Reader:
    """The bearer token of ``authorization``, else the session ``cookie`` (only pass one on GET)."""
    token = bearer_token(authorization)
    if token is not None:
        scope = table.scope_of(token)
        if scope is None:
            raise Unauthorized()
        return Reader(scope, token)
    if cookie and sessions is not None:
        found = sessions.scope(table, cookie)
        if found is not None:
            return Reader(found[1], None, found[0])
    raise Unauthorized()


def unknown_device(device_id: str) -> NotFound:
    return NotFound(f"No device '{device_id}'.")


def require_device(reader: Reader, device_id: str) -> None:
    """Out of scope → the very 404 an unknown device gets (checked again against the database later)."""
    if not reader.may_see(device_id):
        raise unknown_device(device_id)
