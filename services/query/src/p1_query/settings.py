"""Query configuration, read once at start-up."""

from pydantic import Field, field_validator

from p1_servicekit.settings import ServiceSettings
from p1_servicekit.tokens import parse_read_tokens


class QuerySettings(ServiceSettings):
    """What ``p1-query serve`` reads."""

    # token:devA|devB or token:*, comma-separated (sha256:<hex> allowed). Required, no default: there is
    # no anonymous read access.
    read_tokens: str = Field(repr=False)
    capacity_price_eur_per_kw_year: float = Field(default=53.25, ge=0)
    # How long one process reuses a device's newest reading for realtime answers (0: never).
    realtime_memo_s: float = Field(default=0.25, ge=0, le=5)
    # Exports in progress at once, per read token and per process; more get 429 with Retry-After.
    export_max_per_token: int = Field(default=2, ge=1)
    export_max_per_process: int = Field(default=4, ge=1)
    # An export whose client has taken no data for this long is aborted and its slot freed.
    export_send_timeout_s: float = Field(default=30.0, gt=0)
    # The last line: no single export statement (one page, one chunk of buckets) may run longer.
    export_statement_timeout_s: float = Field(default=15.0, gt=0)
    # Bytes of new Redis cache entries per read token per window of their lifetime (24 h for answers
    # about the past, 10 s for the others); beyond it answers are served but not cached in Redis.
    cache_budget_bytes: int = Field(default=8 * 1024 * 1024, ge=0)

    @field_validator("read_tokens")
    @classmethod
    def _tokens(cls, value: str) -> str:
        if len(parse_read_tokens(value)) == 0:
            raise ValueError("READ_TOKENS has no entry")
        return value
