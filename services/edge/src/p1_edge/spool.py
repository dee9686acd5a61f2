"""The durable queue between meter and ingest: SQLite in WAL mode, one small transaction per reading.

A reading counts once its INSERT is committed. How far a commit survives is ``SPOOL_SYNC``:

* ``normal`` (``synchronous=NORMAL``): a commit survives a crash of the process (kill -9, OOM) at once,
  without an fsync per reading; an OS crash or a power cut can lose the readings committed since SQLite
  last synced the WAL, which it does at each checkpoint (every 1,000 WAL pages: minutes at 1 Hz). The
  spool itself is never corrupted: WAL recovery stops at the last intact commit.
* ``full`` (``synchronous=FULL``): every commit is fsynced before it returns: a power cut loses at
  most the reading being written. One fsync per reading (per second) on the SD card.

Rows leave ``readings`` only through :meth:`Spool.ack` (ingest answered 2xx), :meth:`Spool.quarantine`
(ingest called them invalid) or the ``SPOOL_MAX_ROWS`` bound (oldest first, counted). Every method is
blocking and short; the daemon runs them in a worker thread (``asyncio.to_thread``), serialised by one
lock around one connection.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from p1_contracts.models import Meter, Sample
from p1_edge.spoolfile import SCHEMA, SpoolStats, read_stats

log = logging.getLogger(__name__)

# Readings joined per compress call of ``peek_gzip``: ~250 kB of JSON at a time.
_GZIP_SLICE = 256
_SAMPLES = b'"samples":['

SpoolSync = Literal["normal", "full"]
_SYNCHRONOUS: dict[SpoolSync, str] = {"normal": "NORMAL", "full": "FULL"}


@dataclass(frozen=True)
class Batch:
    """Consecutive readings of one origin (device id + meter), oldest first."""

    first_id: int
    last_id: int
    count: int
    payload: bytes  # the SampleBatch JSON (built from the stored text without re-parsing), gzipped


class Spool:
    def __init__(self, path: Path, max_rows: int, sync: SpoolSync = "normal") -> None:
        self.path = path
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._origins: dict[tuple[str, str], int] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={_SYNCHRONOUS[sync]}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        for origin_id, device_id, meter in self._db.execute("SELECT id, device_id, meter FROM origins"):
            self._origins[(device_id, meter)] = origin_id
        self._depth = 0
        self._recount()
        self.is_open = True

    def close(self) -> None:
        with self._lock:
            self.is_open = False
            self._db.close()

    @property
    def depth(self) -> int:
        return self._depth

    def append(
        self, device_id: str, meter: Meter | None, sample: Sample, meta: Mapping[str, str] | None = None
    ) -> int:
        """Commits one reading (and ``meta`` keys with it, in the same transaction); returns how many of
        the oldest were dropped to stay bounded."""
        row = (sample.ts.timestamp(), sample.model_dump_json(exclude_none=True))
        return self.append_json(device_id, meter, [row], meta)

    def append_json(
        self,
        device_id: str,
        meter: Meter | None,
        rows: Sequence[tuple[float, str]],
        meta: Mapping[str, str] | None = None,
    ) -> int:
        """Commits readings given as (epoch ts, Sample JSON) in one transaction; returns drops.

        The JSON must be a valid Sample: it is sent as is (the bench fills 604,800 readings this way).
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                origin = self._origin(device_id, meter)
                self._db.executemany(
                    "INSERT INTO readings (origin, ts, body) VALUES (?, ?, ?)",
                    [(origin, ts, body) for ts, body in rows],
                )
                self._depth += len(rows)
                dropped = self._enforce_bound()
                for key, value in (meta or {}).items():
                    self._set(key, value)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._recount()
                raise
        if dropped:
            where = {"spool_max_rows": self.max_rows, "dropped": dropped}
            log.warning("spool full: dropped the oldest readings", extra=where)
        return dropped

    def _origin(self, device_id: str, meter: Meter | None) -> int:
        meter_json = meter.model_dump_json(exclude_none=True) if meter else "null"
        key = (device_id, meter_json)
        if key not in self._origins:
            self._db.execute("INSERT OR IGNORE INTO origins (device_id, meter) VALUES (?, ?)", key)
            (origin_id,) = self._db.execute(
                "SELECT id FROM origins WHERE device_id = ? AND meter = ?", key
            ).fetchone()
            self._origins[key] = int(origin_id)
        return self._origins[key]

    def _enforce_bound(self) -> int:
        excess = self._depth - self.max_rows
        if excess <= 0:
            return 0
        cur = self._db.execute(
            "DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT ?)", (excess,)
        )
        self._depth -= cur.rowcount
        self._bump("dropped_total", cur.rowcount)
        return cur.rowcount

    def _bump(self, key: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + ?",
            (key, str(by), by),
        )

    def _recount(self) -> None:
        (count,) = self._db.execute("SELECT COUNT(*) FROM readings").fetchone()
        self._depth = int(count)

    def peek_gzip(
        self, limit: int, after_id: int = 0, level: int = 5, edge: bytes | None = None
    ) -> Batch | None:
        """The oldest ``limit`` readings after ``after_id`` that share one origin, as a gzip-compressed
        request body (with ``edge``, the edge's report as EdgeState JSON, when given). Compressed piece
        by piece: the whole JSON of a batch (megabytes at 5,000 readings) is never held at once, which
        bounds the edge's memory while it drains."""
        found = self._read(limit, after_id)
        if found is None:
            return None
        rows, head = found
        if edge is not None:  # before "samples": {"device_id":…,"meter":…,"edge":{…},"samples":[
            head = head[: -len(_SAMPLES)] + b'"edge":' + edge + b"," + _SAMPLES
        packer = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip container
        parts = [packer.compress(head)]
        # In slices of readings: one compress call each (a call per reading costs a third more CPU).
        for k in range(0, len(rows), _GZIP_SLICE):
            piece = b",".join(body for _, body in rows[k : k + _GZIP_SLICE])
            parts.append(packer.compress(b"," + piece if k else piece))
        parts.append(packer.compress(b"]}"))
        parts.append(packer.flush())
        return Batch(first_id=rows[0][0], last_id=rows[-1][0], count=len(rows), payload=b"".join(parts))

    def _read(self, limit: int, after_id: int) -> tuple[list[tuple[int, bytes]], bytes] | None:
        """(id, Sample JSON) of the readings of a batch, and the body's head up to the samples array."""
        with self._lock:
            # Bodies as bytes (CAST): joined without a decode and an encode of every reading.
            rows: list[tuple[int, int, bytes]] = self._db.execute(
                "SELECT id, origin, CAST(body AS BLOB) FROM readings WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
            if not rows:
                return None
            origin = rows[0][1]
            same = [(r[0], r[2]) for r in _takewhile_origin(rows, origin)]
            del rows
            device_id, meter = self._db.execute(
                "SELECT device_id, meter FROM origins WHERE id = ?", (origin,)
            ).fetchone()
        head = f'{{"device_id":{json.dumps(device_id)},"meter":{meter},'.encode() + _SAMPLES
        return same, head

    def ack(self, batch: Batch) -> int:
        """Ingest has the batch (2xx): the readings leave the spool. Returns rows removed."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute(
                "DELETE FROM readings WHERE id BETWEEN ? AND ?", (batch.first_id, batch.last_id)
            )
            self._set("last_upload_at", str(now))
            self._db.execute("COMMIT")
            self._depth -= cur.rowcount
            return cur.rowcount

    def quarantine(self, batch: Batch, status: int, detail: str) -> int:
        """Ingest called the batch invalid: park it for a human, never retry it, go on."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO quarantine (reading_id, origin, ts, body, status, detail, at) "
                "SELECT id, origin, ts, body, ?, ?, ? FROM readings WHERE id BETWEEN ? AND ?",
                (status, detail[:2000], now, batch.first_id, batch.last_id),
            )
            cur = self._db.execute(
                "DELETE FROM readings WHERE id BETWEEN ? AND ?", (batch.first_id, batch.last_id)
            )
            self._set("last_error", f"HTTP {status}: quarantined {cur.rowcount} readings: {detail}"[:2000])
            self._set("last_error_at", str(now))
            self._db.execute("COMMIT")
            self._depth -= cur.rowcount
            return cur.rowcount

    def record_error(self, message: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._set("last_error", message[:2000])
            self._set("last_error_at", str(time.time()))
            self._db.execute("COMMIT")

    def _set(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def set_meta(self, key: str, value: str) -> None:
        """Commits one state key (e.g. the meter's peaks waiting for upload)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._set(key, value)
            self._db.execute("COMMIT")

    def drop_meta(self, key: str, value: str) -> bool:
        """Deletes ``key`` if it still holds ``value`` (not a newer one written meanwhile)."""
        with self._lock:
            cur = self._db.execute("DELETE FROM state WHERE key = ? AND value = ?", (key, value))
        return cur.rowcount > 0

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def oldest_ts(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT ts FROM readings ORDER BY id LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def report_counts(self) -> tuple[int, float | None, int, int]:
        """(depth, oldest reading's epoch ts, quarantined, dropped in all) for the edge's report: cheap
        enough for every batch (the depth is kept, not counted; the oldest is the first rowid)."""
        with self._lock:
            oldest = self._db.execute("SELECT ts FROM readings ORDER BY id LIMIT 1").fetchone()
            (quarantined,) = self._db.execute("SELECT COUNT(*) FROM quarantine").fetchone()
            dropped = self._db.execute("SELECT value FROM state WHERE key = 'dropped_total'").fetchone()
            depth = self._depth
        return (
            depth,
            None if oldest is None else float(oldest[0]),
            int(quarantined),
            0 if dropped is None else int(dropped[0]),
        )

    def stats(self) -> SpoolStats:
        with self._lock:
            return read_stats(self._db)


def _takewhile_origin(rows: list[tuple[int, int, bytes]], origin: int) -> Iterable[tuple[int, int, bytes]]:
    for row in rows:
        if row[1] != origin:
            return
        yield row
