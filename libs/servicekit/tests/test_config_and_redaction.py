"""Configuration errors name the variable and never the value; URL passwords are masked everywhere."""

import json
import logging

import pytest
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from p1_servicekit.logging import JsonFormatter, describe_error, mask_url, redact
from p1_servicekit.settings import CONFIG_EXIT, ConfigError, ServiceSettings, load_settings
from p1_servicekit.tokens import TokenConfigError, parse_device_tokens, parse_read_tokens

SECRET = "s3cr3t-Value-xyz"


class _Echoing(BaseSettings):
    """A settings class whose validator quotes its input, as library messages sometimes do."""

    model_config = SettingsConfigDict(env_prefix="P1T_")
    token_table: str = Field(repr=False)

    @field_validator("token_table")
    @classmethod
    def _quote(cls, value: str) -> str:
        raise ValueError(f"cannot use {value!r}")


def test_a_message_that_quotes_the_value_is_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P1T_TOKEN_TABLE", SECRET)
    with pytest.raises(ConfigError) as info:
        load_settings(_Echoing)
    assert info.value.problems == ["P1T_TOKEN_TABLE: invalid value"]


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"DATABASE_URL": f"postgresql://u:{SECRET}@h:99999/db"}, "DATABASE_URL: not a PostgreSQL URL"),
        ({"REDIS_URL": f"redis://:{SECRET}@h:port/0"}, "REDIS_URL: not a Redis URL"),
        ({"LOG_LEVEL": SECRET}, "LOG_LEVEL: must be DEBUG"),
        ({"DB_POOL_MAX": SECRET}, "DB_POOL_MAX: Input should be a valid integer"),
        ({"HTTP_HEAD_TIMEOUT_S": "0"}, "HTTP_HEAD_TIMEOUT_S: Input should be greater than 0"),
    ],
)
def test_service_settings_errors_are_one_line_per_variable(
    env: dict[str, str], line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(ServiceSettings)
    assert info.value.report("p1-test") == CONFIG_EXIT
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "p1-test: configuration error:"
    assert err.splitlines()[1].startswith(f"  {line}"), err
    assert SECRET not in err


def test_secrets_are_not_in_the_settings_repr() -> None:
    s = ServiceSettings(database_url=f"postgresql://u:{SECRET}@h/db", redis_url=f"redis://:{SECRET}@h/0")
    assert SECRET not in repr(s)
    assert SECRET not in str(s)


@pytest.mark.parametrize(
    "raw",
    [f"dev-1:{SECRET}+/=", f"{SECRET}:dev 1", f"{SECRET}", f"ok:dev-1,{SECRET}", f"sha256:{SECRET}:dev-1"],
)
def test_token_table_errors_never_quote_an_entry(raw: str) -> None:
    for parse in (parse_device_tokens, parse_read_tokens):
        with pytest.raises(TokenConfigError) as info:
            parse(raw)
        assert SECRET not in str(info.value)
        assert "entry" in str(info.value)


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
    assert mask_url(text) == masked
    assert redact(f"error at {text} (refused)") == f"error at {masked} (refused)"


def test_every_log_line_is_redacted() -> None:
    exc = ConnectionError(f"cannot reach postgresql://app:{SECRET}@db/p1")
    record = logging.LogRecord(
        "p1", logging.WARNING, __file__, 1, "down: %s", (f"redis://:{SECRET}@r",), None
    )
    record.error = describe_error(exc)
    line = JsonFormatter().format(record)
    assert SECRET not in line
    assert json.loads(line)["error"] == "ConnectionError: cannot reach postgresql://app:***@db/p1"
