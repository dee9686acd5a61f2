"""Bearer token tables: ``DEVICE_TOKENS`` / ``READ_TOKENS``, or the same entries in a file
(``DEVICE_TOKENS_FILE`` / ``READ_TOKENS_FILE``, kept current by ``p1_servicekit.token_reload``).

An entry is ``token:scope`` or ``sha256:<64 hex>:scope`` so that no plain secret needs to sit in a
manifest. Only SHA-256 digests are kept in memory, and a presented token is compared with every
entry in constant time, so neither the table's content nor a near-miss shows in the timing.

In a variable, entries are separated by commas. In a file, newlines separate them as commas do, and a
line whose first non-blank character is ``#`` is a comment (a note saying whose home a token is for).
An error names the entry by its position (entry n, or line n of a file), never its text.
"""

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from p1_contracts.patterns import is_device_id

_HEX64: Final = re.compile(r"^[0-9a-fA-F]{64}$")
ALL_DEVICES: Final = "*"
# Keeps a fingerprint (see ``fingerprint``) apart from the sha256:<hex> digests a table may be written in.
_FINGERPRINT_DOMAIN: Final = b"p1 token fingerprint\x00"
FINGERPRINT_BYTES: Final = 16


class TokenConfigError(ValueError):
    """A token table entry is malformed; the message names the entry by position, never its text."""


@dataclass(frozen=True)
class TokenEntry:
    digest: bytes
    scope: frozenset[str]  # device ids, or {"*"}


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def fingerprint_of_digest(token_digest: bytes) -> bytes:
    """A one-way name of a table entry that is neither the token nor the digest a manifest may hold: what
    a session cookie carries to say which entry it was made from (and to die with it)."""
    return hashlib.sha256(_FINGERPRINT_DOMAIN + token_digest).digest()[:FINGERPRINT_BYTES]


def fingerprint(token: str) -> bytes:
    """The fingerprint of a presented token (``fingerprint_of_digest`` of its digest)."""
    return fingerprint_of_digest(digest(token))


class TokenLookup(Protocol):
    """What a route authenticates against: a fixed table, or a file's kept current."""

    def scope_of(self, presented: str) -> frozenset[str] | None: ...

    def devices(self) -> frozenset[str]: ...

    def scope_of_fingerprint(self, wanted: bytes) -> frozenset[str] | None: ...


class TokenTable:
    def __init__(self, entries: Iterable[TokenEntry]) -> None:
        self._entries = tuple(entries)
        self._devices = frozenset(d for entry in self._entries for d in entry.scope)
        # Computed once per table (a reload builds a new one), so a session check is a table scan.
        self._fingerprints = tuple((fingerprint_of_digest(e.digest), e.scope) for e in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def devices(self) -> frozenset[str]:
        """Every device id some entry names (``*`` as itself): what may appear in per-device metrics."""
        return self._devices

    def scope_of(self, presented: str) -> frozenset[str] | None:
        """The scope of the presented token, or None when it is unknown."""
        wanted = digest(presented)
        found: frozenset[str] | None = None
        for entry in self._entries:  # no early exit: constant time in the table's size
            if hmac.compare_digest(entry.digest, wanted):
                found = entry.scope
        return found

    def scope_of_fingerprint(self, wanted: bytes) -> frozenset[str] | None:
        """The scope of the entry with this fingerprint, or None when no entry has it (any more)."""
        found: frozenset[str] | None = None
        for print_, scope in self._fingerprints:  # no early exit, as scope_of
            if hmac.compare_digest(print_, wanted):
                found = scope
        return found


# (where, entry text): where names the entry for an error message ("DEVICE_TOKENS entry 2").
Parts = Iterator[tuple[str, str]]


def variable_parts(raw: str, variable: str) -> Parts:
    """The entries of a variable: comma-separated, blanks skipped."""
    for n, part in enumerate((p.strip() for p in raw.split(",")), start=1):
        if part:
            yield f"{variable} entry {n}", part


def file_parts(text: str, file_variable: str) -> Parts:
    """The entries of a file: one or more per line (commas), blank and ``#`` comment lines skipped."""
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith("#"):
            continue
        for _, part in variable_parts(line, ""):
            yield f"{file_variable} line {n}", part


def _split(parts: Parts) -> Iterator[tuple[str, str, str]]:
    """(where, token, scope) of each entry; the token keeps its ``sha256:`` prefix when it has one."""
    for where, part in parts:
        if part.startswith("sha256:"):
            hexdigest, sep, scope = part[7:].partition(":")
            if not sep or not _HEX64.match(hexdigest):
                raise TokenConfigError(f"{where}: expected sha256:<64 hex digits>:<scope>")
            yield where, "sha256:" + hexdigest.lower(), scope
        else:
            token, sep, scope = part.rpartition(":")
            if not sep or not token:
                raise TokenConfigError(f"{where}: expected <token>:<scope>")
            yield where, token, scope


def _entry(token: str) -> bytes:
    return bytes.fromhex(token[7:]) if token.startswith("sha256:") else digest(token)


def _device_scope(scope: str) -> frozenset[str] | None:
    """A device token writes exactly one device."""
    return frozenset({scope}) if is_device_id(scope) else None


def _read_scope(scope: str) -> frozenset[str] | None:
    """``devA|devB`` or ``*``."""
    devices = frozenset(d.strip() for d in scope.split("|") if d.strip())
    if devices == {ALL_DEVICES} or (devices and all(map(is_device_id, devices))):
        return devices
    return None


@dataclass(frozen=True)
class TokenKind:
    """One kind of token table: the variable that holds it, and how its scopes read."""

    variable: str
    scope: Callable[[str], frozenset[str] | None]
    # Why a scope was refused. Not even the scope is quoted: in an entry written the wrong way round it
    # is the token.
    scope_rule: str

    @property
    def file_variable(self) -> str:
        """The variable naming a file that holds the table instead."""
        return f"{self.variable}_FILE"

    def table(self, parts: Parts) -> TokenTable:
        entries = []
        for where, token, scope in _split(parts):
            devices = self.scope(scope)
            if devices is None:
                raise TokenConfigError(f"{where}: {self.scope_rule}")
            entries.append(TokenEntry(_entry(token), devices))
        return TokenTable(entries)

    def parse(self, raw: str, variable: str | None = None) -> TokenTable:
        """The table of a variable's value (``variable`` names it in errors)."""
        return self.table(variable_parts(raw, variable or self.variable))

    def parse_file(self, text: str) -> TokenTable:
        """The table of a file's text."""
        return self.table(file_parts(text, self.file_variable))


DEVICE_TOKENS: Final = TokenKind(
    "DEVICE_TOKENS", _device_scope, "the part after the last ':' is not a device id"
)
READ_TOKENS: Final = TokenKind("READ_TOKENS", _read_scope, "scope must be * or device ids joined by |")


def parse_device_tokens(raw: str, variable: str = "DEVICE_TOKENS") -> TokenTable:
    """``token:device_id`` pairs; a device token writes exactly one device."""
    return DEVICE_TOKENS.parse(raw, variable)


def parse_read_tokens(raw: str, variable: str = "READ_TOKENS") -> TokenTable:
    """``token:devA|devB`` or ``token:*``."""
    return READ_TOKENS.parse(raw, variable)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
