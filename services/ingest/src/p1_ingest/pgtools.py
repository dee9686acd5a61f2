"""PostgreSQL's own client programs (``pg_dump``, ``pg_restore``) as ``backup`` and ``restore`` run them:
found on PATH or named as missing in one line, connected without the password on their command line
(``ps`` shows every process's arguments to every user; the password travels in ``PGPASSWORD``), and their
messages passed on with any URL password masked."""

import asyncio
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from p1_config.redact import redact

INSTALL_HINT: Final = (
    "install the PostgreSQL client programs, major version 15 or newer "
    "(Debian/Ubuntu: apt-get install postgresql-client; the p1-ingest image has them)"
)
# What pg_dump says of every TimescaleDB database, with a detail and hints after it: TimescaleDB's own
# catalog has circular foreign keys. Harmless for a full dump (TimescaleDB's documentation says so), so
# it is not passed on.
_CIRCULAR_NOTE: Final = "pg_dump: warning: there are circular foreign-key constraints on this table:"
_NOTE_TAIL: Final = ("pg_dump: detail: ", "pg_dump: hint: ")


class ToolError(RuntimeError):
    """A backup or restore cannot be done; the message is one line for the operator, passwords masked."""


def pg_tool(name: str) -> str:
    """The path of PostgreSQL client program ``name``; ``ToolError`` saying what to install if absent."""
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} not found on PATH: {INSTALL_HINT}")
    return found


@dataclass(frozen=True)
class Connection:
    """How a client program reaches the database: a URL without the password, and its environment."""

    url: str
    env: Mapping[str, str]


def libpq_connection(database_url: str) -> Connection:
    """DATABASE_URL split for libpq: the password (of the URL's user info or a ``password=`` parameter)
    goes to ``PGPASSWORD``, everything else stays in the URL (host, port, database, sslmode, …). A URL
    without a password keeps the caller's ``PGPASSWORD``, as asyncpg does for the services: compose and the
    k8s overlays give the password that way (raw, never URL-encoded), so the backup connects as they do."""
    parts = urlsplit(database_url)
    password = unquote(parts.password) if parts.password is not None else None
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password":
            password = value
        else:
            query.append((key, value))
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    if parts.username is not None:
        netloc = f"{parts.username}@{netloc}"
    url = urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    return Connection(url, env)


def useful_messages(stderr: str) -> list[str]:
    """A client program's messages, passwords masked, without TimescaleDB's known catalog note."""
    kept: list[str] = []
    in_note = False
    for line in stderr.splitlines():
        in_note = line.startswith(_CIRCULAR_NOTE) or (in_note and line.startswith(_NOTE_TAIL))
        if not in_note and line.strip():
            kept.append(redact(line))
    return kept


async def run_tool(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, list[str]]:
    """Runs a client program to its end; its exit status and its useful messages (stdout is not read:
    the programs here write to files)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    return proc.returncode or 0, useful_messages(err.decode(errors="replace"))


async def tool_output(argv: Sequence[str]) -> str:
    """The standard output of a client program that reads only a file (``pg_restore -l``, no database);
    ``ToolError`` with its first message when it fails."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode:
        messages = useful_messages(err.decode(errors="replace"))
        raise ToolError(messages[0] if messages else f"{os.path.basename(argv[0])} failed")
    return out.decode(errors="replace")
