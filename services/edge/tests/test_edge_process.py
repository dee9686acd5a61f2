"""`p1-edge run` as a real process between the simulator and a real HTTP fake of ingest.

Every test ends by proving the delivery guarantee: each reading the edge committed to its spool is
stored by ingest exactly once (ingest keys on (device_id, ts); re-sent readings come back as
duplicates), whatever happened in between: SIGKILL mid-upload, an outage, a full spool, a 401.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from edge_testkit import EdgeProcess, FakeIngest, edge_env, spool_depth
from sim_testkit import running

from p1_edge.simulator.server import Simulator
from p1_edge.spoolfile import readings_in_file, stats_in_file
from p1_servicekit.testing import console_script, eventually, free_port, log_records, logged

DEVICE = "3c39e7aabbcc"  # the v1 simulator's serial: DEVICE_ID defaults to it


def spooled(path: Path) -> dict[float, dict[str, object]]:
    """The committed readings still in the spool, read by another connection (as after a crash)."""
    return dict(readings_in_file(path) or [])


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with running(api="v1", profile="home") as simulator:
        yield simulator


@pytest.fixture
async def ingest() -> AsyncIterator[FakeIngest]:
    fake = await FakeIngest(tokens={"tok": DEVICE}).start()
    yield fake
    await fake.close()


async def start_edge(edges: list[EdgeProcess], env: dict[str, str]) -> EdgeProcess:
    edge = await EdgeProcess(env).start()
    edges.append(edge)
    return edge


async def edge_between(
    edges: list[EdgeProcess], meter: str, ingest: FakeIngest, spool: Path, **extra: str
) -> EdgeProcess:
    """`p1-edge run` reading ``meter`` into ``spool``, uploading to the fake ingest with its token."""
    return await start_edge(
        edges, edge_env(meter=meter, ingest_url=ingest.url, token="tok", spool=spool, **extra)
    )


def stored_ts(ingest: FakeIngest) -> set[float]:
    return {ts for device, ts in ingest.stored if device == DEVICE}


async def test_runs_end_to_end_with_metrics_health_status_and_sigterm(
    tmp_path: Path, sim: Simulator, ingest: FakeIngest, edges: list[EdgeProcess]
) -> None:
    spool = tmp_path / "spool.sqlite"
    port = free_port()
    env = edge_env(meter=sim.host_port, ingest_url=ingest.url, token="tok", spool=spool, metrics_port=port)
    edge = await start_edge(edges, env)
    await eventually(lambda: len(stored_ts(ingest)) >= 3, 30, "three readings at ingest")
    assert ingest.meters  # the smart meter's identity travels with the batch
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/healthz")).status_code == 200
        metrics = (await http.get("/metrics")).text
    for name in (
        'p1_edge_polls_total{result="ok"}',
        "p1_edge_spool_depth",
        "p1_edge_spool_oldest_age_seconds",
        "p1_edge_spool_dropped_total",
        "p1_edge_quarantined_samples_total",
        'p1_edge_upload_batches_total{result="ok"}',
        "p1_edge_uploaded_samples_total",
        "p1_edge_last_upload_timestamp_seconds",
    ):
        assert name in metrics, name
    status = await asyncio.create_subprocess_exec(
        console_script("p1-edge"), "status", env={"SPOOL_PATH": str(spool)}, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await status.communicate()
    assert status.returncode == 0
    text = out.decode()
    for label in (
        "readings waiting:",
        "oldest reading:",
        "quarantined:       0",
        "last upload:",
        "last error:",
    ):
        assert label in text, text
    assert "never" not in text.split("last upload:")[1].splitlines()[0]
    assert await edge.terminate(20) == 0
    assert "stopping" in edge.logs() or "stopped" in edge.logs()
    assert ingest.duplicates == 0  # nothing sent twice without a reason


async def test_sigkill_mid_upload_then_restart_stores_every_committed_reading_once(
    tmp_path: Path, sim: Simulator, ingest: FakeIngest, edges: list[EdgeProcess]
) -> None:
    spool = tmp_path / "spool.sqlite"
    env = edge_env(meter=sim.host_port, ingest_url=ingest.url, token="tok", spool=spool)
    ingest.hold = asyncio.Event()  # ingest stores the batch, then keeps the answer back
    edge = await start_edge(edges, env)
    await eventually(lambda: ingest.held >= 1, 30, "a batch stored with its answer in flight")
    in_flight = stored_ts(ingest)
    assert in_flight
    await edge.kill()  # SIGKILL: no chance to ack
    committed = spooled(spool)
    assert set(in_flight) <= set(committed)  # the un-acked batch is still in the spool
    hold, ingest.hold = ingest.hold, None
    hold.set()  # the answer goes to a dead socket
    await start_edge(edges, env)
    await eventually(
        lambda: set(committed).isdisjoint(spooled(spool)), 30, "the restarted edge to deliver them"
    )
    assert set(committed) <= stored_ts(ingest)
    assert ingest.duplicates >= len(in_flight)  # the in-flight batch came again and changed nothing
    for ts, body in committed.items():
        stored = ingest.stored[(DEVICE, ts)]
        assert stored["import_kwh"] == body["import_kwh"]
        assert stored["power_w"] == body["power_w"]


async def test_ingest_outage_then_drain(
    tmp_path: Path, sim: Simulator, ingest: FakeIngest, edges: list[EdgeProcess]
) -> None:
    spool = tmp_path / "spool.sqlite"
    ingest.down = True
    edge = await edge_between(edges, sim.host_port, ingest, spool)
    await eventually(
        lambda: ingest.answers.count(503) >= 3 and spool_depth(spool) >= 6,
        30,
        "an outage with readings piling up",
    )
    assert not stored_ts(ingest)
    before = spooled(spool)
    ingest.down = False
    await eventually(lambda: set(before) <= stored_ts(ingest), 30, "the backlog to drain")
    await eventually(lambda: spool_depth(spool) <= 2, 30, "the spool to be near empty")
    assert ingest.duplicates == 0
    assert await edge.terminate(20) == 0


async def test_full_spool_drops_oldest_and_says_so(
    tmp_path: Path, sim: Simulator, ingest: FakeIngest, edges: list[EdgeProcess]
) -> None:
    spool = tmp_path / "spool.sqlite"
    ingest.down = True
    edge = await edge_between(edges, sim.host_port, ingest, spool, SPOOL_MAX_ROWS="4")
    await eventually(
        lambda: logged(edge.logs(), "spool full: dropped the oldest readings", spool_max_rows=4),
        30,
        "a dropped reading",
    )
    assert await edge.terminate(20) == 0
    kept = spooled(spool)  # the newest 4: the only committed readings still owed to ingest
    assert len(kept) == 4
    ingest.down = False
    no_meter = f"127.0.0.1:{free_port()}"  # no new readings: the test sees exactly the kept ones
    await edge_between(edges, no_meter, ingest, spool, SPOOL_MAX_ROWS="4")
    await eventually(lambda: spool_depth(spool) == 0, 30, "the kept readings delivered")
    assert stored_ts(ingest) == set(kept)
    stats = stats_in_file(spool)
    assert stats is not None
    assert stats.dropped_total >= 1


async def test_401_stops_uploads_but_polling_goes_on(
    tmp_path: Path, sim: Simulator, ingest: FakeIngest, edges: list[EdgeProcess]
) -> None:
    spool = tmp_path / "spool.sqlite"
    ingest.unauthorized = True
    edge = await edge_between(edges, sim.host_port, ingest, spool)
    await eventually(lambda: "UPLOADS STOPPED" in edge.logs(), 30, "the loud 401 line")
    first = spool_depth(spool)
    await eventually(lambda: spool_depth(spool) >= first + 3, 30, "polling to go on")
    assert ingest.answers.count(401) == 1
    assert await edge.terminate(20) == 0
    status = await asyncio.create_subprocess_exec(
        console_script("p1-edge"), "status", env={"SPOOL_PATH": str(spool)}, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await status.communicate()
    assert "HTTP 401" in out.decode()
    # the token is fixed: the next run delivers everything that was committed, once
    ingest.unauthorized = False
    committed = spooled(spool)
    await edge_between(edges, sim.host_port, ingest, spool)
    await eventually(lambda: set(committed) <= stored_ts(ingest), 30, "the backlog after the fix")
    assert ingest.duplicates == 0


async def test_v2_detected_device_id_from_serial(tmp_path: Path, edges: list[EdgeProcess]) -> None:
    sim = Simulator(api="v2", profile="single-phase", token="meter-token")
    await sim.start()
    ingest = await FakeIngest(tokens={"tok": sim.serial}).start()
    try:
        env = edge_env(
            meter=sim.host_port,
            ingest_url=ingest.url,
            token="tok",
            spool=tmp_path / "spool.sqlite",
            P1_TOKEN="meter-token",
            P1_CA_FILE=str(sim.ca_file),
        )
        edge = await start_edge(edges, env)
        await eventually(lambda: ingest.count(sim.serial) >= 2, 30, "v2 readings at ingest")
        assert logged(edge.logs(), "meter found", api="v2", serial=sim.serial)
        assert await edge.terminate(20) == 0
    finally:
        await ingest.close()
        await sim.close()


async def test_api_disabled_logs_one_clear_line_and_recovers(
    tmp_path: Path, sim: Simulator, ingest: FakeIngest, edges: list[EdgeProcess]
) -> None:
    sim.faults.api_disabled = True
    edge = await edge_between(edges, sim.host_port, ingest, tmp_path / "s.sqlite")
    await eventually(lambda: sim.requests >= 4, 30, "several polls against the disabled API")
    assert edge.logs().count("enable 'Local API'") == 1
    sim.faults.api_disabled = False
    await eventually(lambda: len(stored_ts(ingest)) >= 1, 30, "readings once the API is enabled")
    assert "readings flow again" in edge.logs() or ingest.stored
    assert await edge.terminate(20) == 0


async def test_run_refuses_to_start_without_configuration(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        console_script("p1-edge"),
        "run",
        env={"SPOOL_PATH": str(tmp_path / "s.sqlite")},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"P1_HOST" not in err  # unset: the meter is found by mDNS
    assert b"INGEST_URL" in err
    assert b"DEVICE_TOKEN" in err


async def test_metrics_port_in_use_is_a_clear_exit(
    tmp_path: Path, sim: Simulator, ingest: FakeIngest
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = edge_env(
            meter=sim.host_port,
            ingest_url=ingest.url,
            token="tok",
            spool=tmp_path / "s.sqlite",
            metrics_port=port,
        )
        edge = await EdgeProcess(env).start()
        assert edge.proc is not None
        assert await asyncio.wait_for(edge.proc.wait(), 30) == 2
    assert logged(edge.logs(), "cannot serve metrics", host="127.0.0.1", port=port)


async def test_readyz_once_the_spool_is_open_and_a_poll_has_run(
    tmp_path: Path, sim: Simulator, ingest: FakeIngest, edges: list[EdgeProcess]
) -> None:
    """Not ready until the first poll has finished (here: a meter that never answers, 3 s timeout);
    ready after it, whatever its result, since the edge is doing its work (the metrics say the meter
    is away)."""
    sim.faults.timeout = True
    port = free_port()
    env = edge_env(
        meter=sim.host_port,
        ingest_url=ingest.url,
        token="tok",
        spool=tmp_path / "s.sqlite",
        metrics_port=port,
    )
    await start_edge(edges, {**env, "P1_TIMEOUT_S": "3"})
    seen: list[tuple[int, str]] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

        async def readyz() -> bool:
            try:
                answer = await http.get("/readyz", timeout=1)
            except httpx.HTTPError:
                return False
            seen.append((answer.status_code, answer.json()["status"]))
            return answer.status_code == 200

        await eventually(readyz, 30, lambda: f"/readyz to answer 200 (seen: {seen})")
    assert (503, "starting: no poll yet") in seen
    assert seen[-1] == (200, "ready")


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_logs_json_lines_by_default_and_one_readable_line_for_a_terminal(
    tmp_path: Path, sim: Simulator, ingest: FakeIngest, edges: list[EdgeProcess], log_format: str
) -> None:
    """LOG_FORMAT as on the services: JSON objects (``extra=`` fields as fields, loggers named by
    module) by default; with ``text``, one line a person reads, the same fields as key=value."""
    edge = await edge_between(edges, sim.host_port, ingest, tmp_path / "s.sqlite", LOG_FORMAT=log_format)
    await eventually(lambda: len(stored_ts(ingest)) >= 1, 30, "a reading at ingest")
    assert await edge.terminate(20) == 0
    lines = edge.logs().splitlines()
    records = log_records(edge.logs())
    if log_format == "json":
        assert len(records) == len(lines) >= 3  # every line, and nothing else
        assert {r["logger"] for r in records} >= {"p1_edge.daemon", "p1_edge.meter.detect"}
        assert logged(edge.logs(), "spooling readings", device_id=DEVICE)
    else:
        assert records == []
        found = [line for line in lines if " INFO p1_edge.daemon: spooling readings " in line]
        assert found, lines
        assert found[0].endswith(f' device_id="{DEVICE}"'), found
