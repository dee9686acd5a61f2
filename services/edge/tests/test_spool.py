"""The spool on a real SQLite file: WAL, bound, batches by origin, ack, quarantine, status."""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from p1_contracts.models import Meter, Sample
from p1_edge.spool import Spool, read_stats_from_file

T0 = datetime(2026, 1, 1, tzinfo=UTC)
METER = Meter(serial="4E47475955", model="ISKRA", protocol_version=50)


def sample(i: int) -> Sample:
    return Sample(ts=T0 + timedelta(seconds=i), power_w=100.0 + i, import_kwh=1.0 + i, export_kwh=0.0)


def test_wal_and_synchronous_normal(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", 100)
    try:
        assert spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        spool.close()


def test_a_committed_reading_is_visible_to_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    spool = Spool(path, 100)
    spool.append("dev1", METER, sample(0))
    # a second connection (another process, or the edge after a crash) sees it at once
    other = sqlite3.connect(path)
    assert other.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == 1
    other.close()
    spool.close()
    reopened = Spool(path, 100)
    assert reopened.depth == 1
    reopened.close()


def test_batches_are_oldest_first_and_split_by_origin(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", 100)
    spool.append_many("dev1", METER, [sample(i) for i in range(5)])
    replaced = Meter(serial="NEW", model="ISKRA", protocol_version=50)
    spool.append_many("dev1", replaced, [sample(i) for i in range(5, 8)])
    batch = spool.peek(100)
    assert batch is not None
    assert batch.count == 5
    body = json.loads(batch.payload)
    assert body["device_id"] == "dev1"
    assert body["meter"] == {"serial": "4E47475955", "model": "ISKRA", "protocol_version": 50}
    assert [s["power_w"] for s in body["samples"]] == [100.0, 101.0, 102.0, 103.0, 104.0]
    three = spool.peek(3)
    assert three is not None
    assert three.count == 3
    assert spool.ack(batch) == 5
    nxt = spool.peek(100)
    assert nxt is not None
    assert json.loads(nxt.payload)["meter"]["serial"] == "NEW"
    assert spool.depth == 3
    spool.close()


def test_gzip_batches_are_the_same_batches_compressed(tmp_path: Path) -> None:
    """peek_gzip builds the body piece by piece into the compressor: the same bytes as peek, gzipped,
    for every batch size and start, across an origin change and with a device id that needs escaping."""
    spool = Spool(tmp_path / "s.sqlite", 1000)
    spool.append_many('dev"1', METER, [sample(i) for i in range(7)])
    spool.append_many('dev"1', None, [sample(i) for i in range(7, 10)])
    for limit in (1, 2, 6, 7, 100):
        for after_id in (0, 3, 7, 9):
            plain, packed = spool.peek(limit, after_id), spool.peek_gzip(limit, after_id)
            assert plain is not None
            assert packed is not None
            assert (packed.first_id, packed.last_id, packed.count) == (
                plain.first_id,
                plain.last_id,
                plain.count,
            )
            assert packed.gzipped
            assert not plain.gzipped
            assert gzip.decompress(packed.payload) == plain.payload
            json.loads(plain.payload)
    assert spool.peek_gzip(100, 10) is None
    # More readings than one compress slice holds.
    spool.append_many('dev"1', None, [sample(i) for i in range(10, 700)])
    plain, packed = spool.peek(5000, 7), spool.peek_gzip(5000, 7)
    assert plain is not None
    assert packed is not None
    assert packed.count == 693
    assert gzip.decompress(packed.payload) == plain.payload
    spool.close()


def test_bound_drops_oldest_counts_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "s.sqlite", 10)
    dropped = sum(spool.append("dev1", METER, sample(i)) for i in range(25))
    assert dropped == 15
    assert "spool full (SPOOL_MAX_ROWS=10): dropped the 1 oldest readings" in caplog.text
    assert spool.depth == 10
    batch = spool.peek(100)
    assert batch is not None
    assert next(s["power_w"] for s in json.loads(batch.payload)["samples"]) == 115.0  # newest 10 kept
    assert spool.stats().dropped_total == 15
    spool.close()


def test_quarantine_moves_rows_and_records_the_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    spool = Spool(path, 100)
    spool.append_many("dev1", METER, [sample(i) for i in range(4)])
    batch = spool.peek(2)
    assert batch is not None
    assert spool.quarantine(batch, 422, "samples[0].ts is in the future") == 2
    stats = read_stats_from_file(path)
    assert (stats.depth, stats.quarantined) == (2, 2)
    assert stats.last_error is not None
    assert "422" in stats.last_error
    assert stats.last_upload_at is None
    rest = spool.peek(100)
    assert rest is not None
    assert rest.count == 2
    spool.ack(rest)
    stats = read_stats_from_file(path)
    assert stats.depth == 0
    assert stats.oldest_ts is None
    assert stats.last_upload_at is not None
    spool.close()


def test_ack_of_a_batch_partly_dropped_meanwhile(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", 5)
    spool.append_many("dev1", METER, [sample(i) for i in range(5)])
    batch = spool.peek(5)
    assert batch is not None
    spool.append_many("dev1", METER, [sample(i) for i in range(5, 8)])  # drops 3 of the batch
    assert spool.ack(batch) == 2
    assert spool.depth == 3
    spool.close()
