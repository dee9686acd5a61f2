"""Ingest test fixtures; also makes the shared helpers (``ingest_kit``, ``store_kit``) importable: pytest
runs with --import-mode=importlib, which does not put the test directory on sys.path."""

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from p1_ingest.store import prepare_connection

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from store_kit import Store  # noqa: E402


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=6, init=prepare_connection)
    yield Store(p)
    await p.close()
