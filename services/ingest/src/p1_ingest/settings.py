"""Ingest configuration, read once at start-up."""

from pydantic import Field, field_validator

from p1_servicekit.settings import ServiceSettings
from p1_servicekit.tokens import parse_device_tokens


class IngestSettings(ServiceSettings):
    # Required, no default: a service that accepts writes must never run with a default secret.
    device_tokens: str = Field(description="token:device_id pairs, comma-separated; sha256:<hex> allowed")
    raw_retention_days: int = Field(default=400, ge=1)

    @field_validator("device_tokens")
    @classmethod
    def _tokens(cls, value: str) -> str:
        if len(parse_device_tokens(value)) == 0:
            raise ValueError("DEVICE_TOKENS has no entry")
        return value
