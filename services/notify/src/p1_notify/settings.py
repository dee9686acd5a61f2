"""Notify configuration, read once at start-up (the notification rules are in the file ``NOTIFY_CONFIG``
names, re-read when it changes: ``p1_notify.config``)."""

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from p1_peakguard.price import GridOperator
from p1_servicekit.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    """What ``p1-notify run`` reads."""

    # The YAML file of devices, their Apprise URLs and cap, and the MQTT broker (README "Notifications").
    notify_config: Path = Path("/etc/p1-notify/notify.yaml")
    # How often the file's modification time is looked at; a changed file is re-read without a restart.
    notify_config_poll_s: float = Field(default=1.0, gt=0, le=60)
    # Without Redis (unset, or down): how often PostgreSQL is asked for the devices' newest readings.
    notify_pg_poll_s: float = Field(default=1.0, gt=0, le=60)
    # With Redis down: how long between attempts to subscribe again (PostgreSQL is polled meanwhile).
    notify_redis_retry_s: float = Field(default=5.0, gt=0, le=300)
    # Per channel and message: attempts (the first included), the first back-off (doubling, jittered)
    # and each attempt's timeout.
    notify_attempts: int = Field(default=3, ge=1, le=10)
    notify_backoff_s: float = Field(default=0.5, ge=0, le=60)
    notify_send_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # The zone of the months (the month's peak so far) and of the times messages write ("before 14:45").
    notify_tz: str = "Europe/Brussels"
    # The capacity price of the costs in messages, as query's (p1_peakguard.price): the override, else
    # the table's figure for the operator and the quarter's year, else the fallback.
    grid_operator: GridOperator | None = None
    capacity_price_eur_per_kw_year: float | None = Field(default=None, ge=0)

    @field_validator("notify_tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name (e.g. Europe/Brussels)") from None
        return value
