"""A spool file read from outside the edge: ``p1-edge status``, and tests and benchmarks that look at what
another process (a running or killed edge) committed, read-only; and the file's layout (``SCHEMA``), which
:mod:`p1_edge.spool` creates and writes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS origins (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    meter TEXT NOT NULL,              -- Meter JSON, or 'null'
    UNIQUE (device_id, meter)
);
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,           -- insertion order = upload order (oldest first)
    origin INTEGER NOT NULL REFERENCES origins(id),
    ts REAL NOT NULL,                 -- the reading's time, epoch seconds (for the age metric)
    body TEXT NOT NULL                -- the Sample as contract JSON, sent as is
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    reading_id INTEGER NOT NULL,
    origin INTEGER NOT NULL,
    ts REAL NOT NULL,
    body TEXT NOT NULL,
    status INTEGER NOT NULL,          -- ingest's HTTP status
    detail TEXT NOT NULL,             -- ingest's problem detail
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);  -- meta: counters, errors,
                                                                           -- the meter clock (localtime.py)
"""


@dataclass(frozen=True)
class SpoolStats:
    """What ``p1-edge status`` shows: the backlog, and the last upload and error."""

    depth: int
    oldest_ts: float | None
    quarantined: int
    dropped_total: int
    last_upload_at: float | None
    last_error: str | None
    last_error_at: float | None


def read_stats(db: sqlite3.Connection) -> SpoolStats:
    (depth,) = db.execute("SELECT COUNT(*) FROM readings").fetchone()
    oldest = db.execute("SELECT ts FROM readings ORDER BY id LIMIT 1").fetchone()
    (quarantined,) = db.execute("SELECT COUNT(*) FROM quarantine").fetchone()
    state = dict(db.execute("SELECT key, value FROM state").fetchall())

    def num(key: str) -> float | None:
        return float(state[key]) if key in state else None

    return SpoolStats(
        depth=int(depth),
        oldest_ts=None if oldest is None else float(oldest[0]),
        quarantined=int(quarantined),
        dropped_total=int(state.get("dropped_total", 0)),
        last_upload_at=num("last_upload_at"),
        last_error=state.get("last_error"),
        last_error_at=num("last_error_at"),
    )


def stats_in_file(path: Path) -> SpoolStats | None:
    """For ``p1-edge status`` and tests: the stats of the spool file of a running (or stopped) edge, read
    without changing anything; None while there is no spool (yet)."""
    return _read(path, read_stats)


def readings_in_file(path: Path) -> list[tuple[float, dict[str, object]]] | None:
    """(epoch ts, Sample) of every reading a spool file holds, oldest first, read as another process
    sees them (after a crash, in tests and benchmarks); None while there is no spool (yet)."""
    rows = _read(path, lambda db: db.execute("SELECT ts, body FROM readings ORDER BY id").fetchall())
    return None if rows is None else [(float(ts), json.loads(body)) for ts, body in rows]


def _read(path: Path, query: Callable[[sqlite3.Connection], T]) -> T | None:
    """``query`` on a read-only connection to the spool file; None when there is none, or it is created
    but its schema not yet committed."""
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        return query(db)
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()


def meta_in_file(path: Path, key: str) -> str | None:
    """A state key of a spool file (e.g. the meter's peaks waiting for upload), or None."""

    def query(db: sqlite3.Connection) -> str | None:
        row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    return _read(path, query)
