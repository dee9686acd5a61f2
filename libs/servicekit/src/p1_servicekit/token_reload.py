"""A token table kept current from its file (``DEVICE_TOKENS_FILE``, ``READ_TOKENS_FILE``): tokens are
added and removed without a restart.

Each worker process polls the file once a second (``watch``, a task of the app's lifespan) and compares
its *content* with what it last read. Polling, not inotify: a Kubernetes Secret volume replaces the file
by swapping the ``..data`` symlink of its directory, an editor by renaming a new file over it or by
truncating and writing it; reading the path each second follows all three alike, on any filesystem
(inotify misses changes behind symlinks and bind mounts, and would be one more dependency), at the cost
of one small read per second. Content, not the file's mtime: two writes within one timestamp tick
can leave it unchanged.

A file that cannot be read, does not parse or has no entry (one being written, a typo) changes
nothing: the last good table stays in force, the problem is logged once (by position, never a token's
text) and counted in ``p1_token_reload_total{result="rejected"}``. The service starts only with a good
file (``check_token_settings``, run when the settings are read).
"""

import asyncio
import hashlib
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter

from p1_config.redact import describe_error
from p1_servicekit.tokens import TokenConfigError, TokenKind, TokenLookup, TokenTable

log = logging.getLogger(__name__)

POLL_INTERVAL_S: Final = 1.0
RELOADED: Final = "reloaded"
REJECTED: Final = "rejected"


def read_token_file(path: Path, kind: TokenKind) -> TokenTable:
    """The table in ``path``; ``TokenConfigError`` when it cannot be read, does not parse or is empty."""
    return _parse(_read(path, kind), path, kind)


def _read(path: Path, kind: TokenKind) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, kind, exc) from None


def _unreadable(path: Path, kind: TokenKind, exc: OSError) -> TokenConfigError:
    return TokenConfigError(
        f"{kind.file_variable}: cannot read {path} ({exc.strerror or type(exc).__name__})"
    )


def _parse(data: bytes, path: Path, kind: TokenKind) -> TokenTable:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenConfigError(f"{kind.file_variable}: {path} is not UTF-8 text") from None
    table = kind.parse_file(text)
    if len(table) == 0:
        raise TokenConfigError(f"{kind.file_variable}: {path} has no entry")
    return table


def check_token_settings(kind: TokenKind, value: str | None, path: Path | None) -> None:
    """Exactly one of the variable and its file, and a table with at least one entry (raises
    ``ValueError``: settings validators report it naming the variables)."""
    if value is not None and path is not None:
        raise ValueError(f"{kind.variable} and {kind.file_variable} are both set: use one of them")
    if path is not None:
        read_token_file(path, kind)
    elif value is None:
        raise ValueError(f"{kind.variable} or {kind.file_variable} is required")
    elif len(kind.parse(value)) == 0:
        raise ValueError(f"{kind.variable} has no entry")


def _failing(error: TokenConfigError) -> Callable[[], TokenTable]:
    def load() -> TokenTable:
        raise error

    return load


class ReloadMetrics:
    """``p1_token_reload_total{service, result}``: changes of a token file taken or refused."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        counter = Counter(
            "p1_token_reload",
            "Changed token files: reloaded, or rejected (unreadable, malformed or empty; the last good "
            "table stays in force).",
            ["service", "result"],
            registry=registry,
        )
        self.reloaded = counter.labels(service, RELOADED)
        self.rejected = counter.labels(service, REJECTED)


class ReloadingTokens:
    """The table of a token file, re-read when the file's content changes (``poll``, ``watch``)."""

    def __init__(self, path: Path, kind: TokenKind, metrics: ReloadMetrics) -> None:
        self.path = path
        self.kind = kind
        self._metrics = metrics
        data = _read(path, kind)
        self._table = _parse(data, path, kind)  # no start without a good file
        self._seen = hashlib.sha256(data).digest()
        log.info("token file loaded", extra={"file": str(path), "entries": len(self._table)})

    def __len__(self) -> int:
        return len(self._table)

    def scope_of(self, presented: str) -> frozenset[str] | None:
        return self._table.scope_of(presented)

    def devices(self) -> frozenset[str]:
        return self._table.devices()

    def scope_of_fingerprint(self, wanted: bytes) -> frozenset[str] | None:
        return self._table.scope_of_fingerprint(wanted)

    async def poll(self) -> str | None:
        """Reads the file once; returns RELOADED, REJECTED, or None when nothing changed."""
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
        except OSError as exc:  # mid-swap, or removed: the same state is reported once
            return self._seen_now(
                f"error:{exc.errno}".encode(), _failing(_unreadable(self.path, self.kind, exc))
            )
        return self._seen_now(data, lambda: _parse(data, self.path, self.kind))

    def _seen_now(self, data: bytes, table: Callable[[], TokenTable]) -> str | None:
        key = hashlib.sha256(data).digest()
        if key == self._seen:
            return None
        self._seen = key
        try:
            new = table()
        except TokenConfigError as exc:
            self._metrics.rejected.inc()
            log.warning(
                "token file rejected, the last good table stays in force",
                extra={"file": str(self.path), "reason": str(exc), "entries": len(self._table)},
            )
            return REJECTED
        self._table = new
        self._metrics.reloaded.inc()
        log.info("token file reloaded", extra={"file": str(self.path), "entries": len(new)})
        return RELOADED

    async def watch(self, interval_s: float = POLL_INTERVAL_S) -> None:
        """Polls until cancelled (the app's shutdown)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.poll()
            except Exception as exc:  # a bug here must not stop the checks for good
                log.error(
                    "token file check failed", extra={"file": str(self.path), "error": describe_error(exc)}
                )


def token_source(
    kind: TokenKind, value: str | None, path: Path | None, registry: CollectorRegistry, service: str
) -> TokenLookup:
    """The service's tokens: the variable's fixed table, or the file's kept current (start its ``watch``:
    ``watchers``). The metric exists either way, so dashboards see 0 rather than nothing."""
    metrics = ReloadMetrics(registry, service)
    if path is not None:
        return ReloadingTokens(path, kind, metrics)
    return kind.parse(value or "")


def watchers(tokens: TokenLookup) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    """What the app's lifespan runs for these tokens: the file's ``watch``, or nothing."""
    return [tokens.watch] if isinstance(tokens, ReloadingTokens) else []
