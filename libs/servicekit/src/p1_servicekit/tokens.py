"""Bearer token tables from ``DEVICE_TOKENS`` and ``READ_TOKENS``.

An entry is ``token:scope`` or ``sha256:<64 hex>:scope`` so that no plain secret needs to sit in a
manifest. Only SHA-256 digests are kept in memory, and a presented token is compared with every
entry in constant time, so neither the table's content nor a near-miss shows in the timing.
"""

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from p1_contracts.patterns import is_device_id

_HEX64: Final = re.compile(r"^[0-9a-fA-F]{64}$")
ALL_DEVICES: Final = "*"


class TokenConfigError(ValueError):
    """A token table entry is malformed; the message names the entry by position, never its text."""


@dataclass(frozen=True)
class TokenEntry:
    digest: bytes
    scope: frozenset[str]  # device ids, or {"*"}


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    def __init__(self, entries: Iterable[TokenEntry]) -> None:
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def scope_of(self, presented: str) -> frozenset[str] | None:
        """The scope of the presented token, or None when it is unknown."""
        wanted = digest(presented)
        found: frozenset[str] | None = None
        for entry in self._entries:  # no early exit: constant time in the table's size
            if hmac.compare_digest(entry.digest, wanted):
                found = entry.scope
        return found


def _split(raw: str, variable: str) -> Iterable[tuple[int, str, str]]:
    for n, part in enumerate((p.strip() for p in raw.split(",")), start=1):
        if not part:
            continue
        if part.startswith("sha256:"):
            hexdigest, sep, scope = part[7:].partition(":")
            if not sep or not _HEX64.match(hexdigest):
                raise TokenConfigError(f"{variable} entry {n}: expected sha256:<64 hex digits>:<scope>")
            yield n, "sha256:" + hexdigest.lower(), scope
        else:
            token, sep, scope = part.rpartition(":")
            if not sep or not token:
                raise TokenConfigError(f"{variable} entry {n}: expected <token>:<scope>")
            yield n, token, scope


def _entry(token: str) -> bytes:
    return bytes.fromhex(token[7:]) if token.startswith("sha256:") else digest(token)


def parse_device_tokens(raw: str, variable: str = "DEVICE_TOKENS") -> TokenTable:
    """``token:device_id`` pairs; a device token writes exactly one device."""
    entries = []
    for n, token, scope in _split(raw, variable):
        if not is_device_id(scope):
            # Not even the scope is quoted: in an entry written the wrong way round it is the token.
            raise TokenConfigError(f"{variable} entry {n}: the part after the last ':' is not a device id")
        entries.append(TokenEntry(_entry(token), frozenset({scope})))
    return TokenTable(entries)


def parse_read_tokens(raw: str, variable: str = "READ_TOKENS") -> TokenTable:
    """``token:devA|devB`` or ``token:*``."""
    entries = []
    for n, token, scope in _split(raw, variable):
        devices = frozenset(d.strip() for d in scope.split("|") if d.strip())
        if devices != {ALL_DEVICES} and (not devices or not all(map(is_device_id, devices))):
            raise TokenConfigError(f"{variable} entry {n}: scope must be * or device ids joined by |")
        entries.append(TokenEntry(_entry(token), devices))
    return TokenTable(entries)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
