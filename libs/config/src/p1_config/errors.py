"""The one way a configuration error is reported, by every command of the project: one line per problem
naming the environment variable, never its value (a value may be a token table or a URL with a
password), on stderr, exit status 2."""

import sys
from collections.abc import Callable
from typing import Any, Final, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

# Exit status of a command whose configuration is wrong (as argparse's for a wrong command line).
CONFIG_EXIT: Final = 2
S = TypeVar("S", bound=BaseSettings)


class ConfigError(Exception):
    """The environment does not make valid settings; ``problems`` has one line each, values left out."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    def report(self, prog: str) -> int:
        """Prints the problems to stderr under ``prog``; returns the exit status for them."""
        print(f"{prog}: configuration error:", file=sys.stderr)
        for line in self.problems:
            print(f"  {line}", file=sys.stderr)
        return CONFIG_EXIT


def run_command(prog: str, command: Callable[[], int]) -> int:
    """Runs one command of a CLI; a ``ConfigError`` it raises becomes its report and exit status."""
    try:
        return command()
    except ConfigError as exc:
        return exc.report(prog)


def load_settings(cls: type[S], **values: Any) -> S:
    """``cls()`` from the environment (``values`` override it); raises ``ConfigError``."""
    try:
        return cls(**values)
    except ValidationError as exc:
        raise ConfigError(config_problems(cls, exc)) from None
    except SettingsError as exc:  # a value pydantic-settings could not even decode
        raise ConfigError([f"cannot read the settings of {cls.__name__} ({type(exc).__name__})"]) from None


def config_problems(cls: type[BaseSettings], exc: ValidationError) -> list[str]:
    """``VARIABLE: what is wrong`` for each error. A message that quotes its input is not trusted: any
    echo of the value is replaced, so a token or a password cannot reach the output this way."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = err.get("loc", ())
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        value = err.get("input")
        if err.get("type") == "too_short" and isinstance(value, str):  # a secret's length, not a list's
            msg = f"should be at least {err.get('ctx', {}).get('min_length')} characters long"
        if isinstance(value, str) and len(value) >= 3 and value in msg:
            msg = "invalid value"
        name = env_name(cls, str(loc[0])) if loc else ""
        lines.append(msg if not name or msg.startswith(name) else f"{name}: {msg}")
    return lines


def env_name(cls: type[BaseSettings], field: str) -> str:
    """The environment variable of a settings field."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    name = prefix + field
    return name if cls.model_config.get("case_sensitive", False) else name.upper()
