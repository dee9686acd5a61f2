"""Spool → Uploader → Uplink → a real HTTP fake of ingest on 127.0.0.1, all in this event loop.

Each test proves that every committed reading ends up stored exactly once (or quarantined when
ingest calls it invalid), whatever ingest does in between.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from edge_testkit import FakeIngest, append_many

from p1_contracts.models import Meter, Sample
from p1_edge.metrics import EdgeMetrics
from p1_edge.spool import Spool
from p1_edge.uplink import Uplink
from p1_edge.uploader import Uploader
from p1_servicekit.testing import eventually

METER = Meter(serial="4E47475955", model="ISKRA", protocol_version=50)
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def samples(n: int, start: int = 0) -> list[Sample]:
    return [
        Sample(ts=T0 + timedelta(seconds=i), power_w=float(i), import_kwh=1.0 + i, export_kwh=0.0)
        for i in range(start, start + n)
    ]


class Rig:
    def __init__(self, tmp_path: Path, ingest: FakeIngest, batch_max: int) -> None:
        self.spool = Spool(tmp_path / "spool.sqlite", 100_000)
        self.metrics = EdgeMetrics()
        self.stopping = asyncio.Event()
        self.spooled = asyncio.Event()
        self.ingest = ingest
        self.uplink = Uplink(ingest.url, "tok-1", timeout_s=5)
        self.uploader = Uploader(
            self.spool,
            self.uplink,
            self.metrics,
            batch_max=batch_max,
            interval_s=0.05,
            backoff_max_s=0.2,
            auth_retry_s=3600,
            stopping=self.stopping,
            spooled=self.spooled,
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.uploader.run())

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
        await self.uplink.aclose()
        self.spool.close()


@pytest.fixture
async def ingest() -> AsyncIterator[FakeIngest]:
    fake = await FakeIngest(tokens={"tok-1": "dev1"}).start()
    yield fake
    await fake.close()


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, ingest: FakeIngest, batch_max: int = 100) -> AsyncIterator[Rig]:
    r = Rig(tmp_path, ingest, batch_max)
    try:
        yield r
    finally:
        await r.stop()


async def test_backlog_drains_oldest_first_in_full_batches(tmp_path: Path, ingest: FakeIngest) -> None:
    async with rig(tmp_path, ingest, batch_max=100) as r:
        append_many(r.spool, "dev1", METER, samples(1050))
        r.start()
        # the metric moves after the ack returns: wait for it, not for the spool's depth
        await eventually(
            lambda: r.metric("p1_edge_uploaded_samples_total") == 1050, 20, "the backlog to drain"
        )
        assert r.spool.depth == 0
        assert ingest.count("dev1") == 1050
        assert ingest.batch_sizes[:10] == [100] * 10
        assert ingest.duplicates == 0
        assert r.metric("p1_edge_upload_batches_total", result="ok") == 11
        stored_ts = sorted(ts for _, ts in ingest.stored)
        assert stored_ts == [s.ts.timestamp() for s in samples(1050)]


async def test_outage_then_recovery_stores_everything_once(tmp_path: Path, ingest: FakeIngest) -> None:
    ingest.down = True
    async with rig(tmp_path, ingest) as r:
        append_many(r.spool, "dev1", METER, samples(30))
        r.start()
        await eventually(
            lambda: r.metric("p1_edge_upload_batches_total", result="error") >= 2,
            10,
            "retries during the outage",
        )
        append_many(r.spool, "dev1", METER, samples(30, start=30))  # polling goes on meanwhile
        assert r.spool.depth == 60
        assert ingest.count("dev1") == 0
        assert r.metric("p1_edge_upload_batches_total", result="error") >= 2
        ingest.down = False
        await eventually(lambda: r.spool.depth == 0, 15, "the spool to drain after the outage")
        assert ingest.count("dev1") == 60
        assert ingest.duplicates == 0
        assert "upload failed" in (r.spool.stats().last_error or "")


async def test_413_halves_the_batch_size(tmp_path: Path, ingest: FakeIngest) -> None:
    ingest.max_samples = 30
    async with rig(tmp_path, ingest, batch_max=100) as r:
        append_many(r.spool, "dev1", METER, samples(120))
        r.start()
        await eventually(lambda: r.spool.depth == 0, 15, "the spool to drain under a 413 limit")
        assert ingest.batch_sizes[:3] == [100, 50, 25]
        assert set(ingest.batch_sizes[3:]) == {25, 20} or max(ingest.batch_sizes[3:]) <= 25
        assert ingest.count("dev1") == 120
        assert r.metric("p1_edge_upload_batches_total", result="too_large") == 2


async def test_invalid_reading_is_quarantined_and_the_rest_flows(tmp_path: Path, ingest: FakeIngest) -> None:
    good = samples(40)
    future = Sample(ts=datetime.now(UTC) + timedelta(hours=2), power_w=1.0, import_kwh=100.0, export_kwh=0.0)
    async with rig(tmp_path, ingest, batch_max=100) as r:
        append_many(r.spool, "dev1", METER, good[:25])
        r.spool.append("dev1", METER, future)  # e.g. a meter clock two hours ahead
        append_many(r.spool, "dev1", METER, good[25:])
        r.start()
        await eventually(
            lambda: (
                r.metric("p1_edge_quarantined_samples_total") == 1
                and r.metric("p1_edge_uploaded_samples_total") == 40
            ),
            15,
            "the spool to empty",
        )
        stats = r.spool.stats()
        assert r.spool.depth == 0
        assert stats.quarantined == 1
        assert ingest.count("dev1") == 40  # every valid reading, once
        assert future.ts.timestamp() not in {ts for _, ts in ingest.stored}
        assert r.metric("p1_edge_quarantined_samples_total") == 1
        assert "422" in (stats.last_error or "")


async def test_401_stops_uploads_loudly_and_keeps_the_spool(
    tmp_path: Path, ingest: FakeIngest, caplog: pytest.LogCaptureFixture
) -> None:
    ingest.unauthorized = True
    async with rig(tmp_path, ingest) as r:
        append_many(r.spool, "dev1", METER, samples(10))
        r.start()
        await eventually(
            lambda: r.metric("p1_edge_upload_batches_total", result="unauthorized") == 1,
            10,
            "the 401",
        )
        append_many(r.spool, "dev1", METER, samples(5, start=10))
        assert r.spool.depth == 15  # nothing dropped, nothing quarantined
        assert r.spool.stats().quarantined == 0
        assert "UPLOADS STOPPED" in caplog.text
        assert "DEVICE_TOKEN" in caplog.text
        assert ingest.answers == [401]  # no hammering: one try per AUTH_RETRY_S
        assert "401" in (r.spool.stats().last_error or "")


async def test_stop_during_backoff_returns_promptly(tmp_path: Path, ingest: FakeIngest) -> None:
    ingest.down = True
    async with rig(tmp_path, ingest) as r:
        append_many(r.spool, "dev1", METER, samples(3))
        r.start()
        await eventually(lambda: len(ingest.answers) >= 1, 10, "a first attempt")
        r.stopping.set()
        assert r.task is not None
        await asyncio.wait_for(r.task, 5)
        assert r.spool.depth == 3


async def test_many_invalid_readings_do_not_cost_a_bisection_each(tmp_path: Path, ingest: FakeIngest) -> None:
    ahead = [
        Sample(
            ts=datetime.now(UTC) + timedelta(hours=2, seconds=i), power_w=1.0, import_kwh=9.0, export_kwh=0.0
        )
        for i in range(40)
    ]
    async with rig(tmp_path, ingest, batch_max=64) as r:
        append_many(r.spool, "dev1", METER, samples(10))
        append_many(r.spool, "dev1", METER, ahead)  # a meter clock two hours ahead, for a while
        append_many(r.spool, "dev1", METER, samples(10, start=10))
        r.start()
        await eventually(lambda: r.spool.depth == 0, 20, "the spool to empty")
        assert r.spool.stats().quarantined == 40
        assert ingest.count("dev1") == 20
        # one bisection down to a single reading, then about one request per bad reading
        assert len(ingest.answers) < 40 + 2 * 7 + 10
