"""Makes the edge tests' helper module importable (pytest runs with --import-mode=importlib), and the
fixtures several test modules share."""

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from edge_testkit import EdgeProcess  # noqa: E402


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the session's database (what the real ingest stored)."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def edges() -> AsyncIterator[list[EdgeProcess]]:
    """Edge processes a test started; any still running is killed after it."""
    started: list[EdgeProcess] = []
    yield started
    for edge in started:
        if edge.running:
            await edge.kill()
