"""Query configuration, read once at start-up."""

from pydantic import Field, field_validator

from p1_servicekit.settings import ServiceSettings
from p1_servicekit.tokens import parse_read_tokens


class QuerySettings(ServiceSettings):
    # Required, no default: there is no anonymous read access.
    read_tokens: str = Field(
        description="token:devA|devB or token:*, comma-separated; sha256:<hex> allowed", repr=False
    )
    capacity_price_eur_per_kw_year: float = Field(default=53.25, ge=0)
    # How long one process reuses a device's newest reading for realtime answers (0: never).
    realtime_memo_s: float = Field(default=0.25, ge=0, le=5)

    @field_validator("read_tokens")
    @classmethod
    def _tokens(cls, value: str) -> str:
        if len(parse_read_tokens(value)) == 0:
            raise ValueError("READ_TOKENS has no entry")
        return value
