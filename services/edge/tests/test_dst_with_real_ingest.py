"""Both daylight-saving changes of a year on API v2, through a real edge into the real ingest.

API v2 stamps readings with the meter's local time and no offset, so the autumn's repeated hour shows
the same times twice. The simulator's clock is frozen and stepped by the test (``advance``) across each
change; after every step the test waits for the edge to have read the new telegram. In the end every
reading the meter served is stored at its own UTC second: the stored set equals the served set (none
lost, none at a wrong time), each with the values the meter served at that second. In autumn the edge
is also killed and restarted inside the repeated hour — in the first pass (the persisted state cannot
tell, the telegram's S/W flag does), in the second pass (the state tells), and once from an empty
spool in the second pass (no state at all: the telegram).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from edge_testkit import EdgeProcess, edge_env, ingest_process, ready, spool_depth

from p1_edge.simulator.server import Simulator
from p1_edge.spoolfile import readings_in_file
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, eventually, free_port

TOKEN = "0123456789ABCDEF0123456789ABCDEF"
DEVICES = ("dstspring", "dstautumn")
TOKENS = ",".join(f"tok-{d}:{d}" for d in DEVICES)
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
async def ingest(database_url: str) -> AsyncIterator[ServiceProcess]:
    proc = await ready(ingest_process(database_url, free_port(), TOKENS).start())
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


class Run:
    """One frozen v2 simulator, the edges reading it in turn, and the test's hand on the clock."""

    def __init__(
        self,
        sim: Simulator,
        device: str,
        spool: Path,
        ingest_url: str,
        edges: list[EdgeProcess],
        db: asyncpg.Connection,
    ):
        self.sim, self.device, self.spool, self.edges, self.db = sim, device, spool, edges, db
        self.env = edge_env(
            meter=sim.host_port,
            ingest_url=ingest_url,
            token=f"tok-{device}",
            spool=spool,
            DEVICE_ID=device,
            P1_API="v2",
            P1_TOKEN=TOKEN,
            P1_CA_FILE=str(sim.ca_file),
        )
        self.edge: EdgeProcess | None = None

    async def start_edge(self) -> None:
        self.edge = await EdgeProcess(self.env).start()
        self.edges.append(self.edge)
        await self.read_now()

    async def kill_edge(self) -> None:
        assert self.edge is not None
        await self.edge.kill()  # SIGKILL: only what the spool committed survives

    def served_seconds(self) -> set[int]:
        return {int(str(r["second"])) for r in self.sim.served}

    async def read_now(self) -> None:
        """Waits until the edge has committed the telegram of the simulator's current second (in the
        spool, or already at ingest), so a kill after it loses nothing the test counts."""
        second = self.sim.clock.now()

        async def committed() -> bool:
            in_spool = {round(ts) for ts, _ in readings_in_file(self.spool) or []}
            return second in in_spool or second in await stored(self.db, self.device)

        await eventually(committed, 20, f"the edge to commit {second}")

    async def step_to(self, instant: datetime) -> None:
        self.step_to_unread(instant)
        await self.read_now()

    def step_to_unread(self, instant: datetime) -> None:
        """Moves the meter's clock on while no edge reads it."""
        self.sim.clock.advance(int(instant.timestamp()) - self.sim.clock.now())


async def stored(db: asyncpg.Connection, device: str) -> dict[int, tuple[float, float]]:
    rows = await db.fetch("SELECT ts, power_w, import_kwh FROM samples WHERE device_id = $1", device)
    return {int(r["ts"].timestamp()): (r["power_w"], r["import_kwh"]) for r in rows}


async def assert_every_reading_stored_at_its_second(run: Run, db: asyncpg.Connection) -> None:
    served = {int(str(r["second"])): r for r in run.sim.served}
    await eventually(lambda: spool_depth(run.spool) == 0, 30, "the spool to drain")
    rows = await stored(db, run.device)
    assert sorted(rows) == sorted(served), (sorted(set(served) - set(rows)), sorted(set(rows) - set(served)))
    for second, reading in served.items():
        assert rows[second] == (reading["power_w"], reading["import_kwh"]), second
    # The times a reading carries are placed too: gas is captured every 5 minutes (so at most 5 minutes
    # before its reading, in the same pass), and a month's peak is never after its reading.
    events = await db.fetch(
        "SELECT ts, gas_ts, month_peak_ts FROM samples WHERE device_id = $1 ORDER BY ts", run.device
    )
    for row in events:
        assert timedelta(0) <= row["ts"] - row["gas_ts"] < timedelta(minutes=5), dict(row)
        assert row["month_peak_ts"] <= row["ts"], dict(row)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def simulator(start: datetime, serial: str) -> Simulator:
    sim = Simulator(api="v2", profile="home", serial=serial, token=TOKEN, start=start, speed=0.0)
    await sim.start()
    return sim


async def test_spring_forward(
    tmp_path: Path, ingest: ServiceProcess, db: asyncpg.Connection, edges: list[EdgeProcess]
) -> None:
    change = utc("2026-03-29T02:00:00+01:00")  # local 02:00 CET becomes 03:00 CEST
    sim = await simulator(change - 10 * MINUTE, "5c2faf000001")
    try:
        run = Run(sim, "dstspring", tmp_path / "spool.sqlite", ingest.base_url, edges, db)
        await run.start_edge()
        for instant in (change - timedelta(seconds=1), change, change + timedelta(seconds=1)):
            await run.step_to(instant)
        for minutes in range(5, 21, 5):
            await run.step_to(change + minutes * MINUTE)
        assert {sim.model.local(s).hour for s in run.served_seconds()} == {1, 3}  # 02:xx never shown
        await assert_every_reading_stored_at_its_second(run, db)
    finally:
        await sim.close()


async def test_fall_back_with_restarts_inside_the_repeated_hour(
    tmp_path: Path, ingest: ServiceProcess, db: asyncpg.Connection, edges: list[EdgeProcess]
) -> None:
    first = utc("2026-10-25T02:00:00+02:00")  # the first pass of 02:00–02:59 (summer time)
    second = first + 60 * MINUTE  # 02:00 again, winter time
    sim = await simulator(first - 5 * MINUTE, "5c2faf000002")
    try:
        run = Run(sim, "dstautumn", tmp_path / "spool.sqlite", ingest.base_url, edges, db)
        await run.start_edge()
        for minutes in (0, 20, 40, 45):
            await run.step_to(first + minutes * MINUTE)
        await run.kill_edge()  # in the first pass: the state cannot tell the passes apart
        run.step_to_unread(first + 50 * MINUTE)
        await run.start_edge()  # … so the telegram's S flag does
        for instant in (
            second - timedelta(seconds=1),
            second,  # the clock goes back: 02:59:59 → 02:00:00
            second + timedelta(seconds=1),
            second + 5 * MINUTE,
        ):
            await run.step_to(instant)
        await run.kill_edge()  # in the second pass: the persisted state tells
        run.step_to_unread(second + 10 * MINUTE)
        await run.start_edge()
        await run.step_to(second + 15 * MINUTE)
        await eventually(lambda: spool_depth(run.spool) == 0, 30, "the spool to drain")
        await run.kill_edge()
        # One read per start is for the meter's peaks (p1_edge.meter_peaks): 3 starts so far. Of the
        # reads for the time, the restart in the first pass only.
        assert sim.paths["/api/telegram"] - 3 == 1
        for suffix in ("", "-wal", "-shm"):
            # a new Pi in the second pass: no state at all, the telegram's W flag
            (tmp_path / f"spool.sqlite{suffix}").unlink(missing_ok=True)
        run.step_to_unread(second + 20 * MINUTE)
        await run.start_edge()
        for minutes in (30, 45, 59, 65):
            await run.step_to(second + minutes * MINUTE)
        shown = [sim.model.local(s).replace(tzinfo=None) for s in sorted(run.served_seconds())]
        assert len(set(shown)) < len(shown)  # the meter really showed local times twice
        telegrams = sim.paths["/api/telegram"] - 4  # less one read per start for the peaks
        assert 1 <= telegrams <= 2, telegrams  # the two starts in doubt; never once per reading
        await assert_every_reading_stored_at_its_second(run, db)
    finally:
        await sim.close()
