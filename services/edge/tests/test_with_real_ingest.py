"""The edge against the real ingest service (`p1-ingest serve`) and a real, migrated PostgreSQL.

Each test proves the delivery guarantee end to end: every reading the edge committed to its spool
is in the `samples` table exactly once — through a SIGKILL of the edge mid-upload, an ingest outage
of a minute, a full spool, an invalid reading and a wrong token.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from edge_testkit import EdgeProcess, append_many, edge_env, ingest_process, ready, spool_depth

from p1_contracts.models import Meter, Sample
from p1_edge.simulator.server import Simulator
from p1_edge.spool import Spool
from p1_edge.spoolfile import readings_in_file, stats_in_file
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, eventually, free_port, logged

DEVICES = ("e2ekill", "e2eoutage", "e2efull", "e2equar", "e2e401")
TOKENS = ",".join(f"tok-{d}:{d}" for d in DEVICES)
OUTAGE_S = float(os.environ.get("EDGE_TEST_OUTAGE_S", "60"))


@pytest.fixture(scope="module")
def ingest_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def outage_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
async def ingest(database_url: str, ingest_port: int) -> AsyncIterator[ServiceProcess]:
    proc = await ready(ingest_process(database_url, ingest_port, TOKENS).start())
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


async def simulator(serial: str) -> Simulator:
    sim = Simulator(api="v1", profile="home", serial=serial)
    await sim.start()
    return sim


async def stored(db: asyncpg.Connection, device: str) -> dict[float, tuple[float, float]]:
    rows = await db.fetch("SELECT ts, power_w, import_kwh FROM samples WHERE device_id = $1", device)
    return {r["ts"].timestamp(): (r["power_w"], r["import_kwh"]) for r in rows}


async def has_rows(db: asyncpg.Connection, device: str, at_least: int) -> bool:
    return len(await stored(db, device)) >= at_least


async def has_stored(db: asyncpg.Connection, device: str, want: set[float]) -> bool:
    return want <= set(await stored(db, device))


def spooled(path: Path) -> dict[float, dict[str, object]]:
    return dict(readings_in_file(path) or [])


def backlog(path: Path, device: str, n: int, *, future: int | None = None) -> dict[float, Sample]:
    """Fills a spool with ``n`` readings one second apart, ending an hour ago."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1, seconds=n)
    samples = [
        Sample(
            ts=start + timedelta(seconds=i),
            power_w=float(i % 5000),
            import_kwh=1000 + i / 3600,
            export_kwh=0.0,
        )
        for i in range(n)
    ]
    spool = Spool(path, 10_000_000)
    try:
        meter = Meter(serial=f"M-{device}", model="test", protocol_version=50)
        if future is None:
            append_many(spool, device, meter, samples)
        else:
            append_many(spool, device, meter, samples[:future])
            bad = Sample(
                ts=datetime.now(UTC) + timedelta(hours=3), power_w=1.0, import_kwh=2000.0, export_kwh=0.0
            )
            spool.append(device, meter, bad)
            append_many(spool, device, meter, samples[future:])
    finally:
        spool.close()
    return {s.ts.timestamp(): s for s in samples}


def no_meter() -> str:
    return f"127.0.0.1:{free_port()}"  # nothing listens: polling fails, the backlog still drains


def drain_env(ingest: ServiceProcess, device: str, spool: Path, **extra: str) -> dict[str, str]:
    """An edge with no meter that only drains ``spool``'s backlog of ``device`` into the real ingest."""
    return edge_env(
        meter=no_meter(),
        ingest_url=ingest.base_url,
        token=f"tok-{device}",
        spool=spool,
        DEVICE_ID=device,
        **extra,
    )


async def test_sigkill_mid_upload_then_restart(
    tmp_path: Path, ingest: ServiceProcess, db: asyncpg.Connection, edges: list[EdgeProcess]
) -> None:
    device, spool = "e2ekill", tmp_path / "spool.sqlite"
    expected = backlog(spool, device, 30_000)
    env = drain_env(ingest, device, spool, UPLOAD_BATCH_MAX="1000")
    edge = await EdgeProcess(env).start()
    edges.append(edge)
    await eventually(lambda: spool_depth(spool) <= 25_000, 60, "a few batches delivered")
    await edge.kill()  # most likely with a batch in flight: the drain never pauses
    left = spooled(spool)
    assert 0 < len(left) < 30_000
    edges.append(await EdgeProcess(env).start())
    await eventually(lambda: spool_depth(spool) == 0, 60, "the restarted edge to drain the rest")
    rows = await stored(db, device)
    assert set(rows) == set(expected)  # every committed reading, nothing else
    for ts, sample in expected.items():
        assert rows[ts] == (sample.power_w, sample.import_kwh)
    count = await db.fetchval("SELECT count(*) FROM samples WHERE device_id = $1", device)
    assert count == len(expected)  # exactly once


async def test_ingest_outage_of_a_minute(
    tmp_path: Path, database_url: str, outage_port: int, db: asyncpg.Connection, edges: list[EdgeProcess]
) -> None:
    device, spool = "e2eoutage", tmp_path / "spool.sqlite"
    sim = await simulator(device)
    proc = await ready(ingest_process(database_url, outage_port, TOKENS).start())
    try:
        env = edge_env(
            meter=sim.host_port,
            ingest_url=proc.base_url,
            token=f"tok-{device}",
            spool=spool,
            POLL_INTERVAL_S="1",
        )
        edge = await EdgeProcess(env).start()
        edges.append(edge)
        await eventually(lambda: has_rows(db, device, 3), 30, f"3 rows for {device}")
        assert proc.stop() in CLEAN_EXITS, proc.logs()  # the outage begins
        outage_end = asyncio.get_running_loop().time() + OUTAGE_S
        await eventually(lambda: asyncio.get_running_loop().time() >= outage_end, OUTAGE_S + 5, "the outage")
        during = spooled(spool)
        assert len(during) >= OUTAGE_S * 0.5  # polling went on: readings piled up
        proc = await ready(ingest_process(database_url, outage_port, TOKENS).start())  # same port back
        await eventually(
            lambda: has_stored(db, device, set(during)), 60 + OUTAGE_S, "the readings of the outage"
        )
        assert await edge.terminate(30) == 0
        rows = await stored(db, device)
        assert set(during) <= set(rows)
    finally:
        proc.stop()
        await sim.close()


async def test_full_spool_keeps_the_newest(
    tmp_path: Path, ingest: ServiceProcess, db: asyncpg.Connection, edges: list[EdgeProcess]
) -> None:
    device, spool = "e2efull", tmp_path / "spool.sqlite"
    sim = await simulator(device)
    try:
        down = edge_env(
            meter=sim.host_port,
            ingest_url=f"http://127.0.0.1:{free_port()}",
            token=f"tok-{device}",
            spool=spool,
            SPOOL_MAX_ROWS="5",
        )
        edge = await EdgeProcess(down).start()
        edges.append(edge)
        await eventually(
            lambda: logged(edge.logs(), "spool full: dropped the oldest readings", spool_max_rows=5),
            30,
            "readings dropped",
        )
        assert await edge.terminate(30) == 0
        kept = spooled(spool)
        assert len(kept) == 5
        up = {**down, "INGEST_URL": ingest.base_url, "P1_HOST": no_meter()}
        edges.append(await EdgeProcess(up).start())
        await eventually(lambda: spool_depth(spool) == 0, 30, "the kept readings delivered")
        assert set(await stored(db, device)) == set(kept)
    finally:
        await sim.close()


async def test_invalid_reading_quarantined_rest_stored_once(
    tmp_path: Path, ingest: ServiceProcess, db: asyncpg.Connection, edges: list[EdgeProcess]
) -> None:
    device, spool = "e2equar", tmp_path / "spool.sqlite"
    expected = backlog(spool, device, 3000, future=1234)
    edges.append(await EdgeProcess(drain_env(ingest, device, spool)).start())
    await eventually(lambda: spool_depth(spool) == 0, 60, "the spool to empty")
    assert set(await stored(db, device)) == set(expected)
    stats = stats_in_file(spool)
    assert stats is not None
    assert stats.quarantined == 1
    assert stats.last_error is not None
    assert stats.last_error.startswith("HTTP 422")


async def test_wrong_token_stops_uploads_polling_goes_on(
    tmp_path: Path, ingest: ServiceProcess, db: asyncpg.Connection, edges: list[EdgeProcess]
) -> None:
    device, spool = "e2e401", tmp_path / "spool.sqlite"
    sim = await simulator(device)
    try:
        env = edge_env(meter=sim.host_port, ingest_url=ingest.base_url, token="not-a-token", spool=spool)
        edge = await EdgeProcess(env).start()
        edges.append(edge)
        await eventually(lambda: "UPLOADS STOPPED" in edge.logs(), 30, "the loud line")
        first = len(spooled(spool))
        await eventually(lambda: len(spooled(spool)) >= first + 3, 30, "polling to go on")
        assert await edge.terminate(30) == 0
        assert await stored(db, device) == {}
        committed = spooled(spool)
        fixed = {**env, "DEVICE_TOKEN": f"tok-{device}", "P1_HOST": no_meter()}
        edges.append(await EdgeProcess(fixed).start())
        await eventually(lambda: spool_depth(spool) == 0, 30, "the backlog after the fix")
        assert set(await stored(db, device)) == set(committed)
    finally:
        await sim.close()
