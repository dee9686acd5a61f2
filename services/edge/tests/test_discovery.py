"""The edge finds the P1 meter by mDNS, and follows it to a new address.

Multicast never leaves a network namespace the test creates for itself (its own loopback, multicast
switched on, 224.0.0.0/4 routed to it): the fake announcements (``mdns_announcer.py``), the simulators,
``p1-edge discover`` and ``p1-edge run`` all run inside it with ``ip netns exec``. Nothing is sent on
the machine's own interfaces. Needs root and ``ip``; skipped with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from p1_edge.meter.discovery import Announcement, choose
from p1_edge.meter.errors import MeterNeedsUser, MeterUnreachable
from p1_edge.spoolfile import readings_in_file
from p1_servicekit.testing import console_script, eventually, logged

ANNOUNCER = Path(__file__).with_name("mdns_announcer.py")
WANTED, OTHER = "5c2fafaabbc1", "5c2fafaabbc2"
PORT = 8090  # inside the namespace: no other process can hold it


def device(serial: str, product: str = "HWE-P1", address: str = "127.0.0.1") -> Announcement:
    return Announcement(f"{serial}._hwenergy._tcp.local.", product, serial, True, "/api/v1", address, 80)


def test_choose_by_serial_then_device_id_then_the_only_one() -> None:
    a, b, socket_ = device(WANTED), device(OTHER), device("3c39e7000001", "HWE-SKT")
    assert choose([a, b, socket_], WANTED.upper(), None) == a
    assert choose([a, b], None, OTHER) == b
    assert choose([a, socket_], None, "my-house") == a  # the only P1: a custom DEVICE_ID is no filter
    with pytest.raises(MeterNeedsUser, match="2 P1 meters"):
        choose([a, b], None, None)
    with pytest.raises(MeterUnreachable):
        choose([socket_], None, None)
    with pytest.raises(MeterUnreachable, match=OTHER):
        choose([a], OTHER, None)
    assert device(WANTED, address="fe80::1").host == "[fe80::1]:80"


def _namespace_problem() -> str | None:
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "creating a network namespace needs root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    return None


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace with only a multicast-capable loopback; deleted afterwards."""
    problem = _namespace_problem()
    if problem:
        pytest.skip(f"mDNS discovery test skipped: {problem}")
    name = f"p1edge-{secrets.token_hex(4)}"
    try:
        ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"mDNS discovery test skipped: cannot create a network namespace ({exc.stderr!r})")
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "set", "lo", "multicast", "on")
        ip("-n", name, "route", "add", "224.0.0.0/4", "dev", "lo")
        yield name
    finally:
        ip("netns", "del", name)


class Inside:
    """Processes the test runs inside the namespace; each is killed at the end."""

    def __init__(self, netns: str, tmp_path: Path) -> None:
        self.netns, self.tmp_path = netns, tmp_path
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(
        self, *argv: str, env: dict[str, str] | None = None, log: str
    ) -> asyncio.subprocess.Process:
        with (self.tmp_path / log).open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", self.netns, *argv,
                env={**os.environ, **(env or {})},
                stdin=asyncio.subprocess.PIPE,
                stdout=out if log != "announcer.log" else asyncio.subprocess.PIPE,
                stderr=out,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    async def run(self, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", self.netns, *argv,
            env={**os.environ, **(env or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode()

    def log(self, name: str) -> str:
        path = self.tmp_path / name
        return path.read_text(errors="replace") if path.exists() else ""

    async def close(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
            await asyncio.wait_for(proc.wait(), 10)


@pytest.fixture
async def inside(netns: str, tmp_path: Path) -> AsyncIterator[Inside]:
    processes = Inside(netns, tmp_path)
    yield processes
    await processes.close()


async def tell(announcer: asyncio.subprocess.Process, command: str) -> None:
    assert announcer.stdin is not None
    assert announcer.stdout is not None
    announcer.stdin.write(f"{command}\n".encode())
    await announcer.stdin.drain()
    assert (await asyncio.wait_for(announcer.stdout.readline(), 20)).strip() == b"ok"


def simulate(address: str, profile: str) -> tuple[str, ...]:
    return (console_script("p1-edge"), "simulate", "--host", address, "--port", str(PORT), "--serial", WANTED,
            "--profile", profile)  # fmt: skip


async def test_the_edge_finds_the_meter_and_follows_its_new_address(inside: Inside, tmp_path: Path) -> None:
    # The meter at its first address is single-phase, "after the DHCP change" three-phase: the spooled
    # readings tell which address the edge read.
    first = await inside.start(*simulate("127.0.0.1", "single-phase"), log="sim1.log")
    await inside.start(*simulate("127.0.0.2", "home"), log="sim2.log")
    announcer = await inside.start(sys.executable, str(ANNOUNCER), log="announcer.log")
    await tell(announcer, f"announce p1-wanted HWE-P1 {WANTED} 127.0.0.1 {PORT} 1")
    await tell(announcer, f"announce p1-neighbour HWE-P1 {OTHER} 127.0.0.3 {PORT} 1")  # nothing listens
    await tell(announcer, "announce socket HWE-SKT 3c39e7000001 127.0.0.4 80 0")

    code, listing = await inside.run(
        console_script("p1-edge"), "discover", "--wait", "3", env={"P1_SERIAL": WANTED}
    )
    assert code == 0, listing
    assert f"* {WANTED}  HWE-P1    127.0.0.1:{PORT}" in listing, listing
    assert f"  {OTHER}  HWE-P1    127.0.0.3:{PORT}" in listing, listing
    assert "3c39e7000001  HWE-SKT   127.0.0.4:80            off" in listing, listing

    spool = tmp_path / "spool.sqlite"
    env = {
        "P1_HOST": "",  # unset: find it
        "P1_SERIAL": WANTED,  # two P1 meters answer: this one
        "INGEST_URL": "http://127.0.0.1:9",  # nothing there: readings stay in the spool
        "DEVICE_TOKEN": "t",
        "SPOOL_PATH": str(spool),
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": "0",
        "POLL_INTERVAL_S": "0.5",
    }
    await inside.start(console_script("p1-edge"), "run", env=env, log="edge.log")

    def phases() -> list[bool]:
        return ["power_l2_w" in body for _, body in readings_in_file(spool) or []]

    await eventually(lambda: len(phases()) >= 3, 60, "readings from the discovered meter")
    assert not any(phases()), inside.log("edge.log")  # single-phase: the meter at 127.0.0.1
    await tell(announcer, "move p1-wanted 127.0.0.2")
    first.kill()  # the old address is gone for good
    await eventually(lambda: any(phases()[-3:]), 60, "readings from the meter's new address")
    log = inside.log("edge.log")
    moved = {"from": f"127.0.0.1:{PORT}", "to": f"127.0.0.2:{PORT}"}
    assert logged(log, "meter moved", product="HWE-P1", **moved), log
    assert logged(log, "p1-edge running", meter="found by mDNS"), log
