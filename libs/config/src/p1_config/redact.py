"""The one way a URL or an error is made fit for output: the password of any URL in it is masked."""

import re
from typing import Final

# The userinfo password of a URL (``scheme://user:password@``; up to the last ``@`` before a space, so
# that a password with an unencoded ``/`` is masked whole) and a ``password=`` option of a DSN.
_URL_PASSWORD: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*):[^\s]*@")
_DSN_PASSWORD: Final = re.compile(r"(password=)[^\s&]*", re.IGNORECASE)
MASK: Final = "***"


def redact(text: str) -> str:
    """``text`` with every URL password masked (``postgresql://app:***@db:5432/p1``): for URLs in logs,
    errors and messages."""
    return _DSN_PASSWORD.sub(rf"\g<1>{MASK}", _URL_PASSWORD.sub(rf"\g<1>:{MASK}@", text))


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, URL passwords masked (drivers may quote their DSN)."""
    return redact(f"{type(exc).__name__}: {exc}")
