"""Query configuration, read once at start-up."""

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

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
    # The key that signs session cookies (p1_query.session), at least 32 characters. Unset: each process
    # makes a random one at start-up (logged as a warning), so sessions end when it restarts and a cookie
    # made by one worker or replica is refused by the others: set it when serving with more than one.
    session_secret: SecretStr | None = Field(default=None, min_length=32)
    # How long a session cookie is good for (it also ends when its token leaves the token table).
    session_max_age_s: int = Field(default=30 * 24 * 3600, ge=60)
    # Bad tokens given to POST /v1/session per client address: a bucket of this size, refilled at this
    # rate; empty, every sign-in from that address is answered 429 until it refills. At most
    # signin_max_clients addresses are tracked (the least recently seen is forgotten first).
    signin_burst: int = Field(default=10, ge=1)
    signin_per_minute: float = Field(default=6.0, gt=0)
    signin_max_clients: int = Field(default=10_000, ge=1)
    # Open live streams (GET /v1/devices/{id}/live), per read token and per process; beyond, 429.
    live_max_per_token: int = Field(default=16, ge=1)
    live_max_per_process: int = Field(default=4000, ge=1)
    # A live stream's comment heartbeat, and how often it checks that its token is still in the table.
    live_heartbeat_s: float = Field(default=15.0, gt=0)
    live_revoke_check_s: float = Field(default=2.0, gt=0)
    # Without Redis (or while it is down), how often a live stream polls PostgreSQL for a new reading.
    live_poll_s: float = Field(default=1.0, gt=0)
    # How often each process settles the dynamic price sums of finished days (p1_query.price_settle;
    # 0: never, then every dynamic cost is computed from its quarters, correct but slower).
    price_sums_interval_s: float = Field(default=60.0, ge=0)
    # Connections one worker serves at once (uvicorn's limit_concurrency; beyond, 503): the live streams
    # it may hold plus room for ordinary requests.
    http_max_concurrency: int = Field(default=5000, ge=1)

    @model_validator(mode="after")
    def _tokens(self) -> "QuerySettings":
        check_token_settings(READ_TOKENS, self.read_tokens, self.read_tokens_file)
        return self
