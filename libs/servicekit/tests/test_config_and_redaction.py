"""The services' settings: errors name the variable and never the value; token tables never quoted."""

import pytest

from p1_config.errors import CONFIG_EXIT, ConfigError, load_settings
from p1_servicekit.settings import ServiceSettings
from p1_servicekit.tokens import TokenConfigError, parse_device_tokens, parse_read_tokens

SECRET = "s3cr3t-Value-xyz"


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
