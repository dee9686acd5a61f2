"""The settings every service shares, read once from the environment at start-up."""

from pydantic import Field, PostgresDsn, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Base of ``IngestSettings`` and ``QuerySettings``.

    There are no default secrets: token tables are required by the services that use them.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        description="asyncpg DSN of the PostgreSQL / TimescaleDB database.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Optional; without it, or with Redis down, everything works, slower.",
    )
    log_level: str = "INFO"
    db_pool_min: int = Field(default=2, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    # How long a request waits for a pooled connection before it is answered 503.
    db_acquire_timeout_s: float = Field(default=2.0, gt=0)
    db_command_timeout_s: float = Field(default=30.0, gt=0)
    # Redis is a cache: a slow Redis must never delay an answer by more than this.
    redis_timeout_s: float = Field(default=0.25, gt=0)
    retry_after_s: int = Field(default=5, ge=1)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        PostgresDsn(value)  # raises a readable error for a malformed URL
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return upper
