"""Helpers for the simulator's tests: simulators on a frozen clock, clients for both APIs, scripted loads."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from p1_edge.simulator.profiles import Load, Profile
from p1_edge.simulator.server import Simulator

TZ = ZoneInfo("Europe/Brussels")
FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "0123456789ABCDEF0123456789ABCDEF"  # the documented shape: 32 hex digits


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=TZ)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@asynccontextmanager
async def running(**options: Any) -> AsyncIterator[Simulator]:
    """A started simulator (frozen at ``start`` unless a speed is given); closed afterwards."""
    options.setdefault("speed", 0.0 if "start" in options else 1.0)
    options.setdefault("token", TOKEN)
    sim = Simulator(**options)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()


def http(sim: Simulator, token: str | None = TOKEN) -> httpx.AsyncClient:
    """A client for the simulator's API (v2: its CA, a bearer token when given)."""
    if sim.api == "v1":
        return httpx.AsyncClient(base_url=f"http://{sim.host_port}", timeout=10)
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    context.check_hostname = False  # the certificate names appliance/p1dongle/<serial> (tested elsewhere)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=f"https://{sim.host_port}", verify=context, headers=headers, timeout=10)


@dataclass(frozen=True)
class ScriptedProfile(Profile):
    """Single-phase power as a step function of local time: ``base_w`` until the first step, then each
    step's watts from its start on. Loads a test can integrate by hand."""

    base_w: int = 0
    steps: tuple[tuple[datetime, int], ...] = ()

    def load(self, local: datetime) -> Load:
        watts = self.base_w
        for since, step_w in self.steps:
            if local >= since:
                watts = step_w
        return Load(watts, 0, 0, 0, 0)


def scripted(base_w: int, *steps: tuple[datetime, int]) -> ScriptedProfile:
    return ScriptedProfile("scripted", "test", False, 0.0, 0.0, False, False, base_w, tuple(steps))
