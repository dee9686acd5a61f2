"""Ingest's configuration, read once at start-up: the service's, and that of its one-shot commands."""

from pathlib import Path

from pydantic import Field, model_validator

from p1_ingest.integrity import DEFAULT_MAX_POWER_W, Limits
from p1_servicekit.settings import ServiceSettings
from p1_servicekit.token_reload import check_token_settings
from p1_servicekit.tokens import DEVICE_TOKENS


class IntegritySettings(ServiceSettings):
    """What judges counter readings: the service, ``migrate`` (its rebuilds) and ``rebuild`` read it."""

    # The connection's largest possible power (W): no two readings may differ by more energy than this
    # power delivers in the time between them (plus one telegram interval). Default 3 × 63 A × 230 V.
    max_power_w: float = Field(default=DEFAULT_MAX_POWER_W, gt=0, le=10_000_000)

    @property
    def limits(self) -> Limits:
        return Limits(self.max_power_w)


class IngestSettings(IntegritySettings):
    """What ``p1-ingest serve`` reads."""

    # token:device_id pairs, comma-separated (sha256:<hex> allowed), or a file of them re-read when it
    # changes (p1_servicekit.token_reload). One of the two is required, no default: a service that
    # accepts writes must never run with a default secret. Plain tokens: never in the settings' repr,
    # and a malformed entry is named by position only.
    device_tokens: str | None = Field(default=None, repr=False)
    device_tokens_file: Path | None = None
    # The request body as sent, and after gzip. A full batch (5,000 readings with every field) is about
    # 4.5 MB of JSON; gzip makes it ~10× smaller.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_decompressed_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Batches of one device that may be in flight at once in one process; more get 429. An edge sends
    # one at a time, so this only stops a misbehaving client from occupying the connection pool.
    max_inflight_per_device: int = Field(default=4, ge=1)
    # The whole body must arrive within this (slow or stalled clients get 408).
    body_timeout_s: float = Field(default=30.0, gt=0)
    # Requests per second per token, with bursts; more get 429 with Retry-After (per process).
    rate_limit_per_s: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _tokens(self) -> "IngestSettings":
        check_token_settings(DEVICE_TOKENS, self.device_tokens, self.device_tokens_file)
        return self

    @model_validator(mode="after")
    def _limits(self) -> "IngestSettings":
        if self.max_decompressed_bytes < self.max_body_bytes:
            raise ValueError("MAX_DECOMPRESSED_BYTES must be at least MAX_BODY_BYTES")
        return self


class MaintainSettings(ServiceSettings):
    """What ``p1-ingest maintain`` reads."""

    # Raw readings older than this are dropped (rollups are kept forever).
    raw_retention_days: int = Field(default=400, ge=1)
