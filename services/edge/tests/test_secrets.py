"""No secret reaches any output of ``p1-edge run | status``: DEVICE_TOKEN (ingest's bearer token) and
P1_TOKEN (the meter's v2 token), through configuration errors, a meter that refuses the token, an
ingest that refuses ours or is unreachable; the logs, stdout/stderr, /metrics and `status` are scanned.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from edge_testkit import EdgeProcess, FakeIngest, console_script, edge_env, eventually

from p1_edge.simulator.server import Simulator
from p1_servicekit.testing import assert_no_secret

DEVICE_TOKEN = "edgeDevTok+/=4c1f9a2b"
P1_TOKEN = "0A1B2C3D4E5F60718293A4B5C6D7E8F9"
SECRETS = (DEVICE_TOKEN, P1_TOKEN)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CONFIG_ERRORS = [
    {"METER_TZ": "Mars/Olympus"},
    {"P1_API": "v3"},
    {"DEVICE_ID": "not a device id"},
    {"P1_TIMEOUT_S": "soon"},
    {"INGEST_URL": ""},  # missing: `run` refuses to start (an unset P1_HOST is mDNS discovery)
    {"P1_SERIAL": "not-a-serial"},
]


@pytest.mark.parametrize("command", ["run", "status"])
@pytest.mark.parametrize("bad", CONFIG_ERRORS, ids=[next(iter(b)) for b in CONFIG_ERRORS])
def test_configuration_errors_show_no_secret(command: str, bad: dict[str, str], tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "P1_HOST": "127.0.0.1:1",
        "INGEST_URL": "http://127.0.0.1:1",
        "DEVICE_TOKEN": DEVICE_TOKEN,
        "P1_TOKEN": P1_TOKEN,
        "SPOOL_PATH": str(tmp_path / "none.sqlite"),
        **bad,
    }
    done = subprocess.run(
        [console_script("p1-edge"), command], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode in (1, 2), done.stderr  # 2: configuration; 1: status without a spool
    assert done.stderr.strip()
    assert_no_secret({"stdout": done.stdout, "stderr": done.stderr}, SECRETS)


async def test_a_running_edge_never_shows_a_secret(tmp_path: Path, edges: list[EdgeProcess]) -> None:
    """A v2 meter that refuses our P1_TOKEN, then accepts it; an ingest that refuses DEVICE_TOKEN, then
    one that is unreachable: every failure is logged and counted, no token is."""
    sim = Simulator(api="v2", profile="single-phase", token="the-meter-wants-another")
    await sim.start()
    ingest = await FakeIngest(tokens={"someone-else": sim.serial}).start()  # 401 for ours
    spool, port = tmp_path / "spool.sqlite", free_port()
    outputs: dict[str, str | bytes] = {}
    try:
        env = edge_env(
            meter=sim.host_port,
            ingest_url=ingest.url,
            token=DEVICE_TOKEN,
            spool=spool,
            metrics_port=port,
            P1_TOKEN=P1_TOKEN,
            P1_CA_FILE=str(sim.ca_file),
            LOG_LEVEL="DEBUG",
        )
        edge = await EdgeProcess(env).start()
        edges.append(edge)
        await eventually(lambda: sim.requests >= 3, 30, "polls refused by the meter")
        sim.appliance.users.tokens["local/edge"] = P1_TOKEN  # the meter accepts our token now: readings,
        # uploads refused with 401
        await eventually(lambda: 401 in ingest.answers, 30, "an upload refused by ingest")
        await ingest.close()  # and now ingest is gone altogether
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            outputs["metrics"] = (await http.get("/metrics")).content
            outputs["healthz"] = (await http.get("/healthz")).content
        assert await edge.terminate(20) == 0
        status = await asyncio.create_subprocess_exec(
            console_script("p1-edge"),
            "status",
            env={"PATH": "/usr/bin:/bin", "SPOOL_PATH": str(spool), "DEVICE_TOKEN": DEVICE_TOKEN},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(status.communicate(), 60)
        outputs["status"] = out.decode()
        outputs["log"] = edge.logs()
    finally:
        await ingest.close()
        await sim.close()
    assert "401" in outputs["status"]  # the refusal is reported, so the scan below means something
    assert_no_secret(outputs, SECRETS)
