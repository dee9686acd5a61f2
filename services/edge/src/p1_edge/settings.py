"""Edge configuration, read once at start from the environment (the variables are documented in README's
"Edge" table; a field ``p1_host`` is the variable ``P1_HOST``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from p1_config.errors import ConfigError
from p1_config.settings import ProcessSettings
from p1_contracts.patterns import DEVICE_ID_PATTERN
from p1_edge.spool import SpoolSync

# The contract allows 5,000 readings per request; we default to that maximum because a backlog
# (7 days = 604,800 readings) must drain fast, and steady-state batches are small anyway.
# A 413 from a proxy halves the size at run time.
DEFAULT_UPLOAD_BATCH_MAX = 5000
# About 11 days at 1 Hz (~0.7 kB per full 3-phase reading on disk, ~700 MB): long enough to ride
# out a holiday outage, small enough for an SD card.
DEFAULT_SPOOL_MAX_ROWS = 1_000_000


class EdgeSettings(ProcessSettings):
    """What ``p1-edge`` reads (every command; ``run`` needs ``ingest_url`` and ``device_token`` too)."""

    # host[:port] of the P1 meter. Unset: the meter is found by mDNS (meter/discovery.py), P1_SERIAL or
    # DEVICE_ID choosing among several.
    p1_host: str = ""
    p1_serial: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{12}$")
    p1_api: Literal["v1", "v2"] | None = None
    p1_token: SecretStr | None = None
    # v2 TLS: by default only the HomeWizard CA plus the appliance hostname rule is trusted.
    p1_ca_file: Path | None = None
    p1_insecure: bool = False
    p1_timeout_s: float = Field(default=4.0, ge=3.0, le=5.0)
    meter_tz: str = "Europe/Brussels"
    ingest_url: str = ""
    device_token: SecretStr | None = None
    device_id: str | None = Field(default=None, pattern=DEVICE_ID_PATTERN)
    poll_interval_s: float = Field(default=1.0, ge=0.5, le=3600)
    spool_path: Path = Path("p1-edge-spool.sqlite")
    spool_max_rows: int = Field(default=DEFAULT_SPOOL_MAX_ROWS, ge=1)
    # normal: a commit survives a crash of the edge, a power cut may lose the last minutes of readings;
    # full: an fsync per reading. See spool.py and README ("What survives what") for the choice.
    spool_sync: SpoolSync = "normal"
    upload_batch_max: int = Field(default=DEFAULT_UPLOAD_BATCH_MAX, ge=1, le=5000)
    # Pause between two uploads once caught up (a backlog drains without pauses). 5 s keeps the edge
    # under 1 % of a core at 1 Hz polling (bench/edge.py: ~0.7 % vs ~1.2 % with 1 s) while the
    # dashboard's realtime view stays within seconds; set 1 for snappier realtime.
    upload_interval_s: float = Field(default=5.0, ge=0.0, le=3600)
    upload_timeout_s: float = Field(default=30.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    # After a 401/403 uploads stop; they are retried this rarely, in case the server side is fixed.
    auth_retry_s: float = Field(default=600.0, gt=0)
    ca_bundle: Path | None = None
    # All interfaces on purpose: Prometheus scrapes the Pi from the LAN (the port serves no secrets).
    metrics_host: str = "0.0.0.0"  # noqa: S104  # nosec B104
    metrics_port: int = Field(default=9101, ge=0, le=65535)

    @field_validator("meter_tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:  # fail at start, not at the first reading
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):  # KeyError would escape pydantic as a traceback
            raise ValueError("not a time zone known to tzdata (e.g. Europe/Brussels)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The meter's time zone (``METER_TZ``)."""
        return ZoneInfo(self.meter_tz)

    def check_for_run(self) -> None:
        """Raises ``ConfigError`` naming everything ``p1-edge run`` cannot do without, before anything
        starts."""
        missing = []
        if not self.ingest_url:
            missing.append("INGEST_URL: required (base URL of ingest, e.g. https://p1.example.org)")
        if self.device_token is None or not self.device_token.get_secret_value():
            missing.append("DEVICE_TOKEN: required (the device's bearer token for ingest)")
        if missing:
            raise ConfigError(missing)
