"""Configuration errors name the variable and never the value, the same way for every command."""

import pytest
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from p1_config.errors import CONFIG_EXIT, ConfigError, load_settings, run_command
from p1_config.settings import ProcessSettings

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
        ({"LOG_LEVEL": SECRET}, "LOG_LEVEL: must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ({"LOG_FORMAT": SECRET}, "LOG_FORMAT: Input should be 'json' or 'text'"),
    ],
)
def test_process_settings_errors_name_the_variable(
    env: dict[str, str], line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(ProcessSettings)
    assert info.value.problems == [line]


def test_settings_read_the_capitals_an_empty_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "warning")
    monkeypatch.setenv("LOG_FORMAT", "")
    settings = load_settings(ProcessSettings)
    assert (settings.log_level, settings.log_format) == ("WARNING", "json")


def test_run_command_reports_a_config_error_once_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    def command() -> int:
        raise ConfigError(["DEVICE_TOKEN: required", "METER_TZ: unknown zone"])

    assert run_command("p1-test", command) == CONFIG_EXIT == 2
    assert capsys.readouterr().err.splitlines() == [
        "p1-test: configuration error:",
        "  DEVICE_TOKEN: required",
        "  METER_TZ: unknown zone",
    ]
    assert run_command("p1-test", lambda: 7) == 7


class _Keyed(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="P1T_")
    signing_key: SecretStr = Field(min_length=32)


def test_a_too_short_secret_is_counted_in_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    # pydantic says "at least 32 items" of a SecretStr, as if it were a list.
    monkeypatch.setenv("P1T_SIGNING_KEY", "short")
    with pytest.raises(ConfigError) as info:
        load_settings(_Keyed)
    assert info.value.problems == ["P1T_SIGNING_KEY: should be at least 32 characters long"]
