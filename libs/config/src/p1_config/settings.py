"""The base of every settings class of the project (ingest, query, maintain and the edge), so that they
read the environment the same way and share how a process logs."""

from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LogFormat = Literal["json", "text"]


class ProcessSettings(BaseSettings):
    """Fields are snake_case and read from the environment variable of the same name in capitals
    (matched case-insensitively); an empty variable counts as unset (as ``P1_API=`` in an env file);
    variables of other processes are ignored; settings are read once and then frozen.

    Fields that may hold a secret are left out of the repr (``repr=False``)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True, env_ignore_empty=True)

    log_level: str = "INFO"
    # json: one object per line, for a log collector; text: one readable line, for a terminal.
    log_format: LogFormat = "json"

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in LOG_LEVELS:
            raise ValueError(f"must be {', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}")
        return upper
