"""`scripts/demo.py` (what `make demo` runs) on free ports: live readings, exit 0, nothing left behind."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from p1_servicekit.testing import free_port, port_open
from p1_servicekit.testing_db import timescaledb_lane

ROOT = Path(__file__).resolve().parents[2]
LIVE = re.compile(r"^live (\S+)\s+power\s+(-?\d+) W\s+import (\d+\.\d{3}) kWh", re.MULTILINE)


def processes_mentioning(needles: list[str]) -> list[str]:
    """Running processes whose command line or environment contains one of ``needles``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        text = f"{cmdline} {environ}"
        if any(needle in text for needle in needles):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


@pytest.fixture
def demo_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The demo finds its storage by itself (what the plain lane tests); the TimescaleDB lane hands it
    the session's database on the lane's server, so that the demo runs on TimescaleDB there."""
    env = dict(os.environ)
    if timescaledb_lane():
        env["DATABASE_URL"] = request.getfixturevalue("database_url")
    return env


@pytest.mark.timeout(150)
def test_demo_shows_live_readings_and_stops_everything(demo_env: dict[str, str]) -> None:
    ports = {name: free_port() for name in ("sim", "ingest", "query", "edge-metrics")}
    argv = [sys.executable, str(ROOT / "scripts/demo.py"), "--duration", "15"]
    for name, port in ports.items():
        argv += [f"--{name}-port", str(port)]
    result = subprocess.run(argv, cwd=ROOT, env=demo_env, capture_output=True, text=True, timeout=120)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    lines = LIVE.findall(out)
    assert lines, out + result.stderr
    assert all(-50_000 < int(power) < 50_000 for _, power, _ in lines)
    assert "stopped; nothing left running." in out
    if timescaledb_lane():
        assert "DATABASE_URL" in out  # the banner names the storage: the lane's, not 5432
    assert f"http://127.0.0.1:{ports['query']}" in out  # the banner with the URLs
    started = list(ports.values())
    # storage the demo started itself when the machine had none (its fixed ports), stopped again too
    if "throwaway cluster" in out:
        started.append(54329)
    if "throwaway redis-server" in out:
        started.append(63799)
    for port in started:
        assert not port_open(port), f"port {port} still open after the demo"
    needles = [f"--port {ports[p]}" for p in ("sim", "ingest", "query")]
    needles.append(f"METRICS_PORT={ports['edge-metrics']}")
    assert processes_mentioning(needles) == []
