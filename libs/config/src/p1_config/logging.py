"""How every p1 process logs: to stderr, one JSON object per line by default (``LOG_FORMAT=json``, for a
log collector) or one readable line (``LOG_FORMAT=text``, for a terminal). Either way a record's
``extra=`` fields are rendered as fields, and every URL password is masked.

Loggers are named ``logging.getLogger(__name__)``: the module a line comes from, no table of names."""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final, TypeVar

from p1_config.errors import load_settings
from p1_config.redact import redact
from p1_config.settings import LogFormat, ProcessSettings

S = TypeVar("S", bound=ProcessSettings)
_RESERVED: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# Libraries whose INFO lines are noise here: uvicorn's access line carries the full path with its query
# string (our metrics count requests instead); httpx logs one line per request (one per poll on the Pi).
_QUIET: Final = ("uvicorn.access", "httpx", "httpcore")


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """The ``extra=`` fields of a record."""
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}


def _time(record: logging.LogRecord) -> str:
    """The record's instant in UTC, written with ``Z`` as every time the project writes."""
    at = datetime.fromtimestamp(record.created, UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """Renders a record and its ``extra=`` fields as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # Last line of defence for messages we do not write (uvicorn, drivers, tracebacks).
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """``2026-03-29T01:00:00.000Z WARNING p1_edge.uploader: upload failed attempt=3 reason="…"``: one
    line a person reads (a traceback follows on its own lines)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_time(record)} {record.levelname} {record.name}: {record.getMessage()}"
        for key, value in _fields(record).items():
            text = value if isinstance(value, int | float) else json.dumps(str(value), ensure_ascii=False)
            line += f" {key}={text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def configure_logging(level: str, fmt: LogFormat = "json") -> None:
    """Sends every logger's records to stderr in ``fmt``; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs its own handlers; route them through ours so that every line has one format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def configured(cls: type[S]) -> S:
    """A command's settings, read once from the environment (``load_settings``: raises ``ConfigError``),
    and logging configured by them."""
    settings = load_settings(cls)
    configure_logging(settings.log_level, settings.log_format)
    return settings
