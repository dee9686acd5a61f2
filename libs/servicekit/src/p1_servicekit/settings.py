"""The settings every service shares, read once from the environment at start-up (their errors are
reported by ``p1_config.errors``: one line per variable, never its value)."""

from pydantic import Field, PostgresDsn, ValidationError, field_validator
from redis.connection import parse_url

from p1_config.settings import ProcessSettings


class HttpSettings(ProcessSettings):
    """What the HTTP protocol itself needs (read in each uvicorn worker, before any app exists)."""

    # Request line + headers larger (431) or slower (408, slowloris) than this are refused.
    http_max_head_bytes: int = Field(default=32 * 1024, ge=1024)
    http_head_timeout_s: float = Field(default=10.0, gt=0)
    # Seconds a client is told to wait after a 503 (database down, body cut off, shutting down).
    retry_after_s: int = Field(default=5, ge=1)


class ServiceSettings(HttpSettings):
    """Base of ``IngestSettings`` and ``QuerySettings``.

    There are no default secrets: token tables are required by the services that use them.
    """

    # The asyncpg DSN of the PostgreSQL / TimescaleDB database.
    database_url: str = Field(default="postgresql://postgres@127.0.0.1:5432/postgres", repr=False)
    # Optional: without it, or with Redis down, everything works, slower.
    redis_url: str | None = Field(default=None, repr=False)
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
