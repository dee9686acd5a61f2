"""Read tokens: who may see which devices. A device outside the token's scope is answered exactly as an
unknown device (404 with the same body), so a token cannot probe which device ids exist."""

import hashlib
from dataclasses import dataclass, field
from typing import Final

from p1_servicekit.errors import NotFound, Unauthorized
from p1_servicekit.tokens import ALL_DEVICES, TokenLookup, bearer_token

# Keeps the key of a token (see Reader.key) apart from the sha256:<hex> digests of READ_TOKENS.
_KEY_DOMAIN: Final = b"p1-query reader key\x00"


@dataclass(frozen=True, slots=True)
class Reader:
    scope: frozenset[str]
    # The presented token itself, only to derive ``key``; never shown (repr) nor stored.
    token: str = field(repr=False)

    @property
    def sees_all(self) -> bool:
        return ALL_DEVICES in self.scope

    def may_see(self, device_id: str) -> bool:
        return self.sees_all or device_id in self.scope

    def key(self) -> str:
        """Who is charged for exports and cache space: a one-way name of the token, safe to keep in
        Redis and in memory. Derived on demand, so realtime answers never pay for it."""
        return hashlib.sha256(_KEY_DOMAIN + self.token.encode()).hexdigest()[:24]


def authenticate(table: TokenLookup, authorization: str | None) -> Reader:
    token = bearer_token(authorization)
    scope = None if token is None else table.scope_of(token)
    if token is None or scope is None:
        raise Unauthorized()
    return Reader(scope, token)


def unknown_device(device_id: str) -> NotFound:
    return NotFound(f"No device '{device_id}'.")


def require_device(reader: Reader, device_id: str) -> None:
    """Out of scope → the very 404 an unknown device gets (checked again against the database later)."""
    if not reader.may_see(device_id):
        raise unknown_device(device_id)
