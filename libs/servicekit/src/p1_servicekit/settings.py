"""The settings every service shares, read once from the environment at start-up, and the one way a
configuration error is reported: one line per problem naming the environment variable, never its value
(a value may be a token table or a URL with a password)."""

import sys
from typing import Any, Final, TypeVar

from pydantic import Field, PostgresDsn, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from redis.connection import parse_url

# Exit status of a command whose configuration is wrong (as argparse's for a wrong command line).
CONFIG_EXIT: Final = 2
S = TypeVar("S", bound=BaseSettings)


class HttpSettings(BaseSettings):
    """What the HTTP protocol itself needs (read in each uvicorn worker, before any app exists)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    # Request line + headers larger (431) or slower (408, slowloris) than this are refused.
    http_max_head_bytes: int = Field(default=32 * 1024, ge=1024)
    http_head_timeout_s: float = Field(default=10.0, gt=0)
    # Seconds a client is told to wait after a 503 (database down, body cut off, shutting down).
    retry_after_s: int = Field(default=5, ge=1)


class ServiceSettings(HttpSettings):
    """Base of ``IngestSettings`` and ``QuerySettings``.

    There are no default secrets: token tables are required by the services that use them. Fields that
    may hold a secret are left out of the settings' repr (``repr=False``).
    """

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        description="asyncpg DSN of the PostgreSQL / TimescaleDB database.",
        repr=False,
    )
    redis_url: str | None = Field(
        default=None,
        description="Optional; without it, or with Redis down, everything works, slower.",
        repr=False,
    )
    log_level: str = "INFO"
    db_pool_min: int = Field(default=2, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    # How long a request waits for a pooled connection before it is answered 503.
    db_acquire_timeout_s: float = Field(default=2.0, gt=0)
    db_command_timeout_s: float = Field(default=30.0, gt=0)
    # Redis is a cache: a slow Redis must never delay an answer by more than this.
    redis_timeout_s: float = Field(default=0.25, gt=0)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        try:
            PostgresDsn(value)
        except ValidationError as exc:  # pydantic's own messages say what is wrong, never the input
            reasons = "; ".join(str(e["msg"]) for e in exc.errors(include_input=False, include_url=False))
            raise ValueError(f"not a PostgreSQL URL ({reasons})") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value:
            try:
                parse_url(value)  # type: ignore[no-untyped-call]  # as Redis.from_url will at start-up
            except (ValueError, TypeError):
                raise ValueError("not a Redis URL (redis://, rediss:// or unix://)") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return upper


class ConfigError(Exception):
    """The environment does not make valid settings; ``problems`` has one line each, values left out."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    def report(self, prog: str) -> int:
        """Prints the problems to stderr under ``prog``; returns the exit status for them."""
        print(f"{prog}: configuration error:", file=sys.stderr)
        for line in self.problems:
            print(f"  {line}", file=sys.stderr)
        return CONFIG_EXIT


def load_settings(cls: type[S], **values: Any) -> S:
    """``cls()`` from the environment (``values`` override it); raises ``ConfigError``."""
    try:
        return cls(**values)
    except ValidationError as exc:
        raise ConfigError(config_problems(cls, exc)) from None
    except SettingsError as exc:  # a value pydantic-settings could not even decode
        raise ConfigError([f"cannot read the settings of {cls.__name__} ({type(exc).__name__})"]) from None


def config_problems(cls: type[BaseSettings], exc: ValidationError) -> list[str]:
    """``VARIABLE: what is wrong`` for each error. A message that quotes its input is not trusted: any
    echo of the value is replaced, so a token or a password cannot reach the output this way."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = err.get("loc", ())
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        value = err.get("input")
        if isinstance(value, str) and len(value) >= 3 and value in msg:
            msg = "invalid value"
        name = env_name(cls, str(loc[0])) if loc else ""
        lines.append(msg if not name or msg.startswith(name) else f"{name}: {msg}")
    return lines


def env_name(cls: type[BaseSettings], field: str) -> str:
    """The environment variable of a settings field."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    name = prefix + field
    return name if cls.model_config.get("case_sensitive", False) else name.upper()
