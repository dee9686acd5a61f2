"""The meter's monthly peaks: read from the simulated Belgian meter's telegram with dsmr-parser, and
carried by a real edge process to a real ingest, through an ingest that is away at first (kept in the
spool, retried until stored)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from edge_testkit import EdgeProcess, edge_env, ingest_process, ready
from sim_testkit import http, local, running, scripted

from p1_edge.meter.peaks import telegram_peaks, telegram_peaks_apart
from p1_edge.meter_peaks import SPOOL_KEY
from p1_edge.simulator.server import Simulator
from p1_edge.spoolfile import meta_in_file
from p1_servicekit.testing import CLEAN_EXITS, eventually, free_port

BRUSSELS = ZoneInfo("Europe/Brussels")


async def test_the_history_and_the_running_month_are_read_from_the_telegram() -> None:
    """A meter of 1000 W always, with one 5000 W quarter at the very end of March 2026, read at
    2026-04-01 00:20: 13 completed months (2025-03 … 2026-03) and the running April. Each month of
    1000 W peaks at its first quarter, stamped with its end (00:15 on the 1st); March's peak is its last
    quarter, stamped 00:00 on April 1st, and is March's all the same."""
    last = local(2026, 3, 31, 23, 45)
    profile = scripted(1000, (last, 5000), (local(2026, 4, 1), 1000))
    start = local(2026, 3, 31, 23, 50)
    async with running(api="v1", profile=profile, start=start) as sim, http(sim) as client:
        assert (await client.post("/_sim/advance", json={"seconds": 30 * 60})).status_code == 200
        telegram = (await client.get("/api/v1/telegram")).text
    peaks = telegram_peaks(telegram, BRUSSELS)
    assert [p["month"] for p in peaks] == [f"2025-{m:02d}" for m in range(3, 13)] + [
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
    ]
    assert peaks[0] == {"month": "2025-03", "peak_w": 1000.0, "peak_ts": "2025-03-01T00:15:00+01:00"}
    assert peaks[-2] == {"month": "2026-03", "peak_w": 5000.0, "peak_ts": "2026-04-01T00:00:00+02:00"}
    assert peaks[-1] == {"month": "2026-04", "peak_w": 1000.0, "peak_ts": "2026-04-01T00:15:00+02:00"}
    # The edge parses in a child process (dsmr-parser's memory stays out of the 1 Hz process): the same.
    assert await telegram_peaks_apart(telegram, BRUSSELS) == peaks


def test_a_telegram_without_peaks_or_a_broken_one_gives_none() -> None:
    assert telegram_peaks("/XMX5LGBBFFB231215493\r\n\r\n1-3:0.2.8(50)\r\n!0000\r\n", BRUSSELS) == []
    assert telegram_peaks("not a telegram", BRUSSELS) == []


async def test_the_child_parser_gives_none_for_a_broken_telegram() -> None:
    assert await telegram_peaks_apart("not a telegram", BRUSSELS) == []


def test_the_edge_loads_neither_dsmr_parser_nor_zeroconf_itself() -> None:
    """The daemon's imports leave dsmr-parser (and dlms-cosem's crypto stack) to the child process, and
    zeroconf to an edge that discovers its meter: the 1 Hz process stays under 50 MB (bench/edge.py)."""
    heavy = {"dsmr_parser", "zeroconf"}
    loaded = "{m.split('.')[0] for m in sys.modules}"
    code = f"import sys, p1_edge.daemon, p1_edge.cli; print(sorted({loaded} & {heavy!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


async def stored_peaks(db: asyncpg.Connection, device: str) -> dict[str, tuple[float, datetime]]:
    rows = await db.fetch("SELECT month, peak_w, peak_ts FROM meter_peaks WHERE device_id = $1", device)
    return {r["month"]: (r["peak_w"], r["peak_ts"]) for r in rows}


async def test_the_edge_uploads_the_peaks_and_keeps_them_until_ingest_stores_them(
    tmp_path: Path, database_url: str, db: asyncpg.Connection, edges: list[EdgeProcess]
) -> None:
    device, spool, port = "e2epeaks", tmp_path / "spool.sqlite", free_port()
    sim = Simulator(api="v1", profile="home", serial=device)
    await sim.start()
    proc = ingest_process(database_url, port, f"tok-{device}:{device}")
    try:
        env = edge_env(meter=sim.host_port, ingest_url=proc.base_url, token=f"tok-{device}", spool=spool)
        edge = await EdgeProcess(env).start()
        edges.append(edge)
        # Ingest is not there yet: the peaks wait in the spool, committed.
        await eventually(lambda: meta_in_file(spool, SPOOL_KEY) is not None, 30, "the peaks in the spool")
        pending = json.loads(str(meta_in_file(spool, SPOOL_KEY)))
        assert pending["device_id"] == device
        history = sim.model.history()
        assert len(history) == 13
        assert len(pending["peaks"]) == 14  # 13 months and the running one
        await ready(proc.start())
        await eventually(lambda: meta_in_file(spool, SPOOL_KEY) is None, 30, "the peaks stored")
        rows = await stored_peaks(db, device)
        assert {p["month"] for p in pending["peaks"]} == set(rows)
        for entry in history:  # what the simulated meter holds, as ingest stored it
            month = f"{(entry.month_end - timedelta(seconds=1)).astimezone(BRUSSELS):%Y-%m}"
            assert rows[month] == (float(entry.peak.w), entry.peak.at)
        assert await edge.terminate(30) == 0
    finally:
        assert proc.stop() in (*CLEAN_EXITS, None)
        await sim.close()
