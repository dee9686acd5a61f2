"""The spool on a real SQLite file: WAL, bound, batches by origin, ack, quarantine, status."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from edge_testkit import append_many

from p1_contracts.models import EdgeState, Meter, Sample, SampleBatch
from p1_edge.report import EdgeReport, edge_version
from p1_edge.spool import Batch, Spool, SpoolSync
from p1_edge.spoolfile import SpoolStats, readings_in_file, stats_in_file

T0 = datetime(2026, 1, 1, tzinfo=UTC)
METER = Meter(serial="4E47475955", model="ISKRA", protocol_version=50)


def sample(i: int) -> Sample:
    return Sample(ts=T0 + timedelta(seconds=i), power_w=100.0 + i, import_kwh=1.0 + i, export_kwh=0.0)


def stats(path: Path) -> SpoolStats:
    found = stats_in_file(path)
    assert found is not None
    return found


def body(batch: Batch | None) -> dict[str, Any]:
    assert batch is not None
    decoded: dict[str, Any] = json.loads(gzip.decompress(batch.payload))
    return decoded


@pytest.mark.parametrize(("sync", "level"), [("normal", 1), ("full", 2)])
def test_wal_and_the_chosen_synchronous(tmp_path: Path, sync: SpoolSync, level: int) -> None:
    spool = Spool(tmp_path / "s.sqlite", 100, sync)
    try:
        assert spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == level  # 1 NORMAL, 2 FULL
    finally:
        spool.close()


def test_meta_is_committed_with_the_reading(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    spool = Spool(path, 100)
    assert spool.meta("meter_clock") is None
    spool.append("dev1", METER, sample(0), {"meter_clock": "x"})
    spool.close()
    reopened = Spool(path, 100)
    assert reopened.meta("meter_clock") == "x"
    reopened.close()


def test_file_helpers_read_what_another_process_committed(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    assert stats_in_file(path) is None
    assert readings_in_file(path) is None
    spool = Spool(path, 100)
    append_many(spool, "dev1", METER, [sample(i) for i in range(3)])
    assert stats(path).depth == 3
    readings = readings_in_file(path)
    assert readings is not None
    assert [(ts, r["power_w"]) for ts, r in readings] == [(T0.timestamp() + i, 100.0 + i) for i in range(3)]
    spool.close()


def test_a_committed_reading_is_visible_to_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    spool = Spool(path, 100)
    spool.append("dev1", METER, sample(0))
    # a second connection (another process, or the edge after a crash) sees it at once
    assert stats(path).depth == 1
    spool.close()
    reopened = Spool(path, 100)
    assert reopened.depth == 1
    reopened.close()


def test_batches_are_oldest_first_and_split_by_origin(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", 100)
    append_many(spool, "dev1", METER, [sample(i) for i in range(5)])
    replaced = Meter(serial="NEW", model="ISKRA", protocol_version=50)
    append_many(spool, "dev1", replaced, [sample(i) for i in range(5, 8)])
    batch = spool.peek_gzip(100)
    assert batch is not None
    assert batch.count == 5
    first = body(batch)
    assert first["device_id"] == "dev1"
    assert first["meter"] == {"serial": "4E47475955", "model": "ISKRA", "protocol_version": 50}
    assert [s["power_w"] for s in first["samples"]] == [100.0, 101.0, 102.0, 103.0, 104.0]
    three = spool.peek_gzip(3)
    assert three is not None
    assert three.count == 3
    assert spool.ack(batch) == 5
    assert body(spool.peek_gzip(100))["meter"]["serial"] == "NEW"
    assert spool.depth == 3
    spool.close()


def test_gzip_batches_are_whole_batches_for_every_size_and_start(tmp_path: Path) -> None:
    """peek_gzip builds the body piece by piece into the compressor: for every batch size and start,
    across an origin change, with a device id that needs escaping and past one compress slice, the
    body decompresses to the batch's readings in order, as one JSON document."""
    spool = Spool(tmp_path / "s.sqlite", 1000)
    append_many(spool, 'dev"1', METER, [sample(i) for i in range(7)])
    append_many(spool, 'dev"1', None, [sample(i) for i in range(7, 10)])
    for limit in (1, 2, 6, 7, 100):
        for after_id in (0, 3, 7, 9):
            batch = spool.peek_gzip(limit, after_id)
            assert batch is not None
            first = after_id + 1
            last = min(after_id + limit, 7 if after_id < 7 else 10)  # origins split at id 7
            assert (batch.first_id, batch.last_id, batch.count) == (first, last, last - first + 1)
            decoded = body(batch)
            assert decoded["device_id"] == 'dev"1'
            assert decoded["meter"] == (METER.model_dump(exclude_none=True) if after_id < 7 else None)
            assert [s["power_w"] for s in decoded["samples"]] == [99.0 + i for i in range(first, last + 1)]
    assert spool.peek_gzip(100, 10) is None
    # More readings than one compress slice holds.
    append_many(spool, 'dev"1', None, [sample(i) for i in range(10, 700)])
    packed = spool.peek_gzip(5000, 7)
    assert packed is not None
    assert packed.count == 693
    assert [s["power_w"] for s in body(packed)["samples"]] == [100.0 + i for i in range(7, 700)]
    spool.close()


def test_bound_drops_oldest_counts_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "s.sqlite", 10)
    dropped = sum(spool.append("dev1", METER, sample(i)) for i in range(25))
    assert dropped == 15
    full = [r for r in caplog.records if r.msg == "spool full: dropped the oldest readings"]
    assert [(r.spool_max_rows, r.dropped) for r in full] == [(10, 1)] * 15  # type: ignore[attr-defined]
    assert spool.depth == 10
    assert body(spool.peek_gzip(100))["samples"][0]["power_w"] == 115.0  # newest 10 kept
    assert spool.stats().dropped_total == 15
    spool.close()


def test_quarantine_moves_rows_and_records_the_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    spool = Spool(path, 100)
    append_many(spool, "dev1", METER, [sample(i) for i in range(4)])
    batch = spool.peek_gzip(2)
    assert batch is not None
    assert spool.quarantine(batch, 422, "samples[0].ts is in the future") == 2
    found = stats(path)
    assert (found.depth, found.quarantined) == (2, 2)
    assert found.last_error is not None
    assert "422" in found.last_error
    assert found.last_upload_at is None
    rest = spool.peek_gzip(100)
    assert rest is not None
    assert rest.count == 2
    spool.ack(rest)
    found = stats(path)
    assert found.depth == 0
    assert found.oldest_ts is None
    assert found.last_upload_at is not None
    spool.close()


def test_ack_of_a_batch_partly_dropped_meanwhile(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", 5)
    append_many(spool, "dev1", METER, [sample(i) for i in range(5)])
    batch = spool.peek_gzip(5)
    assert batch is not None
    append_many(spool, "dev1", METER, [sample(i) for i in range(5, 8)])  # drops 3 of the batch
    assert spool.ack(batch) == 2
    assert spool.depth == 3
    spool.close()


def test_the_report_rides_in_the_batch_and_counts_what_the_spool_holds(tmp_path: Path) -> None:
    """The body with the edge's report is a valid SampleBatch whose ``edge`` says what the spool holds:
    12 readings appended with room for 10 → 2 dropped, 10 waiting; 3 of them quarantined → 7 waiting,
    3 quarantined; the batch read next (4 readings) is counted in the depth (7)."""
    spool = Spool(tmp_path / "s.sqlite", 10)
    report = EdgeReport(spool, version="1.2.3")
    append_many(spool, "dev1", METER, [sample(i) for i in range(12)])
    first = spool.peek_gzip(3)
    assert first is not None
    spool.quarantine(first, 422, "bad")
    report.meter_failed()
    report.meter_failed()
    batch = spool.peek_gzip(4, edge=report.json())
    assert batch is not None
    payload = gzip.decompress(batch.payload)
    parsed = SampleBatch.model_validate_json(payload)
    assert parsed.edge is not None
    assert len(parsed.samples) == 4
    edge = parsed.edge.model_dump()
    age, uptime = edge.pop("spool_oldest_age_s"), edge.pop("uptime_s")
    assert edge == {
        "spool_depth": 7,
        "quarantined": 3,
        "spool_dropped": 2,
        "meter_errors": 2,
        "version": "1.2.3",
    }
    # the oldest waiting reading is sample(5), from 2026-01-01 00:00:05 UTC: its age is that far back
    assert age == pytest.approx(time.time() - (T0 + timedelta(seconds=5)).timestamp(), abs=5)
    assert 0 <= uptime < 60
    # without a report the body is as before (older ingests never see an `edge`)
    assert "edge" not in body(spool.peek_gzip(4))
    spool.close()


def test_the_version_sent_fits_the_contract() -> None:
    assert edge_version() == "0.1.0"
    assert EdgeState.model_fields["version"].metadata  # the contract bounds it (pattern, length)


def test_every_grid_field_survives_the_spool_round_trip(tmp_path: Path) -> None:
    # Issue 13.6: what the meter gives about the grid (counts, frequency, total current) and the gas and
    # water meters' ids travel through the spool exactly, counts as whole numbers.
    grid = {
        "current_a": 6.0,
        "frequency_hz": 49.98,
        "power_fail_count": 4.0,
        "long_power_fail_count": 5.0,
        "voltage_sag_l1_count": 1.0,
        "voltage_sag_l2_count": 2.0,
        "voltage_sag_l3_count": 0.0,
        "voltage_swell_l1_count": 3.0,
        "voltage_swell_l2_count": 0.0,
        "voltage_swell_l3_count": 99999.0,
        "gas_unique_id": "4E474C5944",
        "water_unique_id": "4e475347",
    }
    full = Sample.model_validate({**sample(0).model_dump(), **grid})
    path = tmp_path / "s.sqlite"
    spool = Spool(path, 100)
    spool.append("dev1", METER, full)
    spool.close()
    reopened = Spool(path, 100)  # from the file, as after an edge restart
    try:
        (sent,) = body(reopened.peek_gzip(10))["samples"]
    finally:
        reopened.close()
    assert {name: sent[name] for name in grid} == grid
    assert Sample.model_validate_json(json.dumps(sent)) == full
