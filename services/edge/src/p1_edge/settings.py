"""Edge configuration, read once at start from the environment (names binding, DESIGN §4)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from p1_contracts.patterns import DEVICE_ID_PATTERN
from p1_edge.spool import SpoolSync

# The contract allows 5,000 readings per request; we default to that maximum because a backlog
# (7 days = 604,800 readings) must drain fast, and steady-state batches are small anyway.
# A 413 from a proxy halves the size at run time.
DEFAULT_UPLOAD_BATCH_MAX = 5000
# About 11 days at 1 Hz (~0.7 kB per full 3-phase reading on disk, ~700 MB): long enough to ride
# out a holiday outage, small enough for an SD card.
DEFAULT_SPOOL_MAX_ROWS = 1_000_000


class EdgeSettings(BaseSettings):
    # Empty variables (as in an env file with `P1_API=`) mean "not set", not an invalid value.
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", env_ignore_empty=True)

    # Unset: the meter is found by mDNS (meter/discovery.py), P1_SERIAL or DEVICE_ID choosing among several.
    P1_HOST: str = Field(default="", description="host[:port] of the P1 meter")
    P1_SERIAL: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{12}$")
    P1_API: Literal["v1", "v2"] | None = None
    P1_TOKEN: SecretStr | None = None
    # v2 TLS: by default only the HomeWizard CA plus the appliance hostname rule is trusted.
    P1_CA_FILE: Path | None = None
    P1_INSECURE: bool = False
    P1_TIMEOUT_S: float = Field(default=4.0, ge=3.0, le=5.0)
    METER_TZ: str = "Europe/Brussels"
    INGEST_URL: str = ""
    DEVICE_TOKEN: SecretStr | None = None
    DEVICE_ID: str | None = Field(default=None, pattern=DEVICE_ID_PATTERN)
    POLL_INTERVAL_S: float = Field(default=1.0, ge=0.5, le=3600)
    SPOOL_PATH: Path = Path("p1-edge-spool.sqlite")
    SPOOL_MAX_ROWS: int = Field(default=DEFAULT_SPOOL_MAX_ROWS, ge=1)
    # normal: a commit survives a crash of the edge, a power cut may lose the last minutes of readings;
    # full: an fsync per reading. See spool.py and README ("What survives what") for the choice.
    SPOOL_SYNC: SpoolSync = "normal"
    UPLOAD_BATCH_MAX: int = Field(default=DEFAULT_UPLOAD_BATCH_MAX, ge=1, le=5000)
    # Pause between two uploads once caught up (a backlog drains without pauses). 5 s keeps the edge
    # under 1 % of a core at 1 Hz polling (bench/edge.py: ~0.7 % vs ~1.2 % with 1 s) while the
    # dashboard's realtime view stays within seconds; set 1 for snappier realtime.
    UPLOAD_INTERVAL_S: float = Field(default=5.0, ge=0.0, le=3600)
    UPLOAD_TIMEOUT_S: float = Field(default=30.0, gt=0)
    BACKOFF_MAX_S: float = Field(default=60.0, gt=0)
    # After a 401/403 uploads stop; they are retried this rarely, in case the server side is fixed.
    AUTH_RETRY_S: float = Field(default=600.0, gt=0)
    CA_BUNDLE: Path | None = None
    # All interfaces on purpose: Prometheus scrapes the Pi from the LAN (the port serves no secrets).
    METRICS_HOST: str = "0.0.0.0"  # noqa: S104  # nosec B104
    METRICS_PORT: int = Field(default=9101, ge=0, le=65535)
    LOG_LEVEL: str = "INFO"

    @field_validator("METER_TZ")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone: fail at start, not at the first reading
        return value

    @property
    def meter_tz(self) -> ZoneInfo:
        return ZoneInfo(self.METER_TZ)

    def problems_for_run(self) -> list[str]:
        """What `p1-edge run` cannot do without; reported all at once, before anything starts."""
        missing = []
        if not self.INGEST_URL:
            missing.append("INGEST_URL (base URL of ingest, e.g. https://p1.example.org)")
        if self.DEVICE_TOKEN is None or not self.DEVICE_TOKEN.get_secret_value():
            missing.append("DEVICE_TOKEN (the device's bearer token for ingest)")
        return missing
