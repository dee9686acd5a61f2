"""Log lines: JSON by default, one readable line with LOG_FORMAT=text, ``extra=`` fields as fields, and
every URL password masked whatever the format."""

import json
import logging

import pytest

from p1_config.logging import JsonFormatter, TextFormatter, configure_logging
from p1_config.redact import describe_error, redact

SECRET = "s3cr3t-Value-xyz"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://app:pa%2Fss@db:5432/p1", "postgresql://app:***@db:5432/p1"),
        ("postgresql://app:pa/ss+w@db/p1 then", "postgresql://app:***@db/p1 then"),  # unencoded '/'
        ("redis://:pw@127.0.0.1:6379/3", "redis://:***@127.0.0.1:6379/3"),
        (
            "postgresql://app@db/p1?sslmode=require&password=pw",
            "postgresql://app@db/p1?sslmode=require&password=***",
        ),
        ("postgresql://app@db/p1", "postgresql://app@db/p1"),
    ],
)
def test_url_passwords_are_masked(text: str, masked: str) -> None:
    assert redact(text) == masked
    assert redact(f"error at {text} (refused)") == f"error at {masked} (refused)"


def _record(msg: str = "down", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("p1_x.mod", logging.WARNING, __file__, 1, msg, args, None)
    record.created = 1774746000.25  # 2026-03-29T01:00:00.250Z
    record.__dict__.update(extra)
    return record


def test_every_json_line_is_redacted() -> None:
    exc = ConnectionError(f"cannot reach postgresql://app:{SECRET}@db/p1")
    record = _record("down: %s", f"redis://:{SECRET}@r", error=describe_error(exc))
    line = JsonFormatter().format(record)
    assert SECRET not in line
    assert json.loads(line) == {
        "ts": "2026-03-29T01:00:00.250Z",
        "level": "warning",
        "logger": "p1_x.mod",
        "msg": "down: redis://:***@r",
        "error": "ConnectionError: cannot reach postgresql://app:***@db/p1",
    }


def test_a_text_line_reads_as_one_line_with_its_fields() -> None:
    record = _record(
        "upload failed", attempt=3, retry_in_s=1.5, reason=f'HTTP 503 "busy" redis://:{SECRET}@r'
    )
    assert TextFormatter().format(record) == (
        "2026-03-29T01:00:00.250Z WARNING p1_x.mod: upload failed attempt=3 retry_in_s=1.5 "
        'reason="HTTP 503 \\"busy\\" redis://:***@r"'
    )


@pytest.mark.parametrize(("fmt", "formatter"), [("json", JsonFormatter), ("text", TextFormatter)])
def test_configure_logging_installs_one_handler_in_the_format(fmt: str, formatter: type) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("DEBUG", fmt)  # type: ignore[arg-type]
        configure_logging("INFO", fmt)  # type: ignore[arg-type]  # idempotent
        assert [type(h.formatter) for h in root.handlers] == [formatter]
        assert root.level == logging.INFO
        assert logging.getLogger("httpx").level == logging.WARNING
        assert logging.getLogger("uvicorn.error").propagate
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
