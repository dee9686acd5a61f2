"""No secret reaches any output of ``p1-edge run | status``: DEVICE_TOKEN (ingest's bearer token) and
P1_TOKEN (the meter's v2 token), through configuration errors, a meter that refuses the token, an
ingest that refuses ours or is unreachable; the logs, stdout/stderr, /metrics and `status` are scanned.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import httpx
import pytest
from edge_testkit import EdgeProcess, FakeIngest, edge_env

from p1_edge.simulator.server import Simulator
from p1_servicekit.testing import assert_no_secret, console_script, eventually, free_port

DEVICE_TOKEN = "edgeDevTok+/=4c1f9a2b"
P1_TOKEN = "0A1B2C3D4E5F60718293A4B5C6D7E8F9"
SECRETS = (DEVICE_TOKEN, P1_TOKEN)


# (the environment's mistake, the lines p1-edge prints for it). A secret put in the wrong variable is
# not echoed either.
CONFIG_ERRORS = [
    ({"METER_TZ": "Mars/Olympus"}, ["METER_TZ: not a time zone known to tzdata (e.g. Europe/Brussels)"]),
    ({"P1_API": "v3"}, ["P1_API: Input should be 'v1' or 'v2'"]),
    (
        {"DEVICE_ID": DEVICE_TOKEN},
        ["DEVICE_ID: String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'"],
    ),
    (
        {"P1_TIMEOUT_S": P1_TOKEN},
        ["P1_TIMEOUT_S: Input should be a valid number, unable to parse string as a number"],
    ),
    ({"P1_SERIAL": P1_TOKEN}, ["P1_SERIAL: String should match pattern '^[0-9A-Fa-f]{12}$'"]),
    ({"LOG_LEVEL": DEVICE_TOKEN}, ["LOG_LEVEL: must be DEBUG, INFO, WARNING, ERROR or CRITICAL"]),
    (
        {"LOG_FORMAT": "xml", "POLL_INTERVAL_S": "0"},
        [
            "LOG_FORMAT: Input should be 'json' or 'text'",
            "POLL_INTERVAL_S: Input should be greater than or equal to 0.5",
        ],
    ),
]


def _edge(command: str, tmp_path: Path, **bad: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "P1_HOST": "127.0.0.1:1",
        "INGEST_URL": "http://127.0.0.1:1",
        "DEVICE_TOKEN": DEVICE_TOKEN,
        "P1_TOKEN": P1_TOKEN,
        "SPOOL_PATH": str(tmp_path / "none.sqlite"),
        **bad,
    }
    return subprocess.run(
        [console_script("p1-edge"), command], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", ["run", "status"])
@pytest.mark.parametrize(("bad", "lines"), CONFIG_ERRORS, ids=["+".join(b) for b, _ in CONFIG_ERRORS])
def test_configuration_errors_are_one_line_per_variable_without_its_value(
    command: str, bad: dict[str, str], lines: list[str], tmp_path: Path
) -> None:
    """Every command of the edge reports its configuration as the services do (``p1_config``): exit 2,
    one line per wrong variable naming it, no value, no traceback."""
    done = _edge(command, tmp_path, **bad)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == ["p1-edge: configuration error:", *(f"  {line}" for line in lines)]
    assert done.stdout == ""
    assert_no_secret({"stdout": done.stdout, "stderr": done.stderr}, SECRETS)


def test_run_names_everything_it_misses_at_once(tmp_path: Path) -> None:
    """Empty variables count as unset (as in an env file): ``run`` names both, ``status`` needs neither."""
    done = _edge("run", tmp_path, INGEST_URL="", DEVICE_TOKEN="")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "p1-edge: configuration error:",
        "  INGEST_URL: required (base URL of ingest, e.g. https://p1.example.org)",
        "  DEVICE_TOKEN: required (the device's bearer token for ingest)",
    ]
    status = _edge("status", tmp_path, INGEST_URL="", DEVICE_TOKEN="")
    assert (status.returncode, status.stderr) == (
        1,
        f"p1-edge status: no spool at {tmp_path / 'none.sqlite'} (set SPOOL_PATH)\n",
    )
    assert_no_secret({"run": done.stderr, "status": status.stderr + status.stdout}, SECRETS)


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
