"""Query configuration, read once at start-up."""

from pathlib import Path

from pydantic import Field, model_validator

from p1_peakguard.price import GridOperator
from p1_servicekit.settings import ServiceSettings
from p1_servicekit.token_reload import check_token_settings
from p1_servicekit.tokens import READ_TOKENS


class QuerySettings(ServiceSettings):
    """What ``p1-query serve`` reads."""

    # token:devA|devB or token:*, comma-separated (sha256:<hex> allowed), or a file of them re-read when
    # it changes (p1_servicekit.token_reload). One of the two is required, no default: there is no
    # anonymous read access.
    read_tokens: str | None = Field(default=None, repr=False)
    read_tokens_file: Path | None = None
    # The capacity price: the table's figure of this operator and the month's year (p1_peakguard.price),
    # unless the price is set, which overrides it.
    grid_operator: GridOperator | None = None
    capacity_price_eur_per_kw_year: float | None = Field(default=None, ge=0)
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

    @model_validator(mode="after")
    def _tokens(self) -> "QuerySettings":
        check_token_settings(READ_TOKENS, self.read_tokens, self.read_tokens_file)
        return self
