"""Structured (one JSON object per line) logging for the services, and the one way a URL or an error
is made fit for output: the password of any URL in it is masked."""

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Final

_RESERVED: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# The userinfo password of a URL (``scheme://user:password@``; up to the last ``@`` before a space, so
# that a password with an unencoded ``/`` is masked whole) and a ``password=`` option of a DSN.
_URL_PASSWORD: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*):[^\s]*@")
_DSN_PASSWORD: Final = re.compile(r"(password=)[^\s&]*", re.IGNORECASE)
MASK: Final = "***"


def redact(text: str) -> str:
    """``text`` with every URL password masked: for URLs in logs, errors and messages."""
    return _DSN_PASSWORD.sub(rf"\g<1>{MASK}", _URL_PASSWORD.sub(rf"\g<1>:{MASK}@", text))


def mask_url(url: str) -> str:
    """A URL fit for a log line: ``postgresql://app:***@db:5432/p1``."""
    return redact(url)


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, URL passwords masked (drivers may quote their DSN)."""
    return redact(f"{type(exc).__name__}: {exc}")


class JsonFormatter(logging.Formatter):
    """Renders a record and its ``extra=`` fields as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # Last line of defence for messages we do not write (uvicorn, drivers, tracebacks).
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


def configure_logging(level: str) -> None:
    """Sends every logger's records to stderr as JSON lines; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs its own handlers; route them through ours so every line is JSON.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # Access lines carry the full path, query string included; our metrics cover requests instead.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
