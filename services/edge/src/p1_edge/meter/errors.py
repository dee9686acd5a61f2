"""What can go wrong talking to the meter.

    MeterError
    ├── MeterUnreachable      timeout, refused connection, TLS failure: try again next poll
    ├── MeterBadResponse      not JSON, not an object, unexpected status, unusable reading
    └── MeterNeedsUser        only the user can fix it; ``hint`` says how (logged once)
        ├── MeterApiDisabled  v1: 403 "API not enabled"
        └── MeterUnauthorized v2: 401, token missing or revoked

httpx errors are translated here, at the client boundary, with ``raise … from``.
"""

from __future__ import annotations


class MeterError(Exception):
    """Base of every meter failure."""


class MeterUnreachable(MeterError):
    """No answer: timeout, refused connection, TLS failure; the next poll tries again."""


class MeterBadResponse(MeterError):
    """An answer the edge cannot use: not JSON, not an object, an unexpected status, an unusable reading."""


class MeterNeedsUser(MeterError):
    """Only the user can fix it; ``hint`` says how (logged once)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class MeterApiDisabled(MeterNeedsUser):
    """v1 answered 403: the local API is switched off in the HomeWizard app."""


class MeterUnauthorized(MeterNeedsUser):
    """v2 answered 401: the token is missing or was revoked."""
