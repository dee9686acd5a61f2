"""The simulator's HTTP(S) face: a HomeWizard P1 dongle (HWE-P1) speaking API v1 over HTTP or API v2
over HTTPS, plus fault switches and control routes for tests (see :mod:`.control`).

The meter routes and their answers are in :mod:`.api_v1` and :mod:`.api_v2`; the smart meter behind the
dongle is :class:`~.model.MeterModel`, seen through one reading per telegram (:class:`~.device.Device`).
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from p1_edge.httpserver import HttpServer, Request, Response
from p1_edge.simulator import api_v1, api_v2, control
from p1_edge.simulator.appliance import PAIRING_WINDOW_S, Appliance, Users
from p1_edge.simulator.clock import MeterClock
from p1_edge.simulator.device import Device
from p1_edge.simulator.flavours import Country, DsmrVersion, flavour
from p1_edge.simulator.model import MeterModel
from p1_edge.simulator.payloads import kwh
from p1_edge.simulator.profiles import PROFILES, Profile
from p1_edge.simulator.reading import MeterReading
from p1_edge.simulator.registers import Registers
from p1_edge.simulator.tls import make_certificates

SERVED_MAX = 100_000  # readings remembered for GET /_sim/served (~28 h at 1 Hz)
READING_PATHS = frozenset({"/api/v1/data", "/api/measurement"})


@dataclass
class Faults:
    timeout: bool = False  # never answer (the client's timeout fires)
    api_disabled: bool = False  # 403 "API not enabled" on every meter route
    malformed: bool = False  # a truncated JSON body for readings


class Simulator:
    def __init__(
        self,
        *,
        api: Literal["v1", "v2"] = "v1",
        profile: str | Profile = "home",
        host: str = "127.0.0.1",
        port: int = 0,
        serial: str | None = None,
        token: str | None = None,
        tz: ZoneInfo | None = None,
        cert_dir: Path | None = None,
        country: Country | None = None,
        dsmr: DsmrVersion = 5,
        start: datetime | None = None,
        speed: float = 1.0,
        installed: datetime | None = None,
        registers: Registers | None = None,
    ) -> None:
        self.api = api
        self.serial = serial or ("3c39e7aabbcc" if api == "v1" else "5c2fafaabbcc")
        self.clock = MeterClock(start, speed)
        begin = self.clock.now() if registers is None else registers.second
        if begin > self.clock.now():
            raise ValueError("the meter state is of a second after the meter's clock")
        self.model = MeterModel(
            PROFILES[profile] if isinstance(profile, str) else profile,
            tz or ZoneInfo("Europe/Brussels"),
            datetime.fromtimestamp(begin, UTC),
            flavour=flavour(country, dsmr),
            installed=installed,
        )
        if registers is not None:  # the meter goes on from a known state (`make demo`'s history)
            registers.apply(self.model.state)
        users = Users(token or secrets.token_hex(16).upper())
        self.appliance = Appliance(self.serial, users, booted_at=self.clock.now())
        self.device = Device(self.clock, self.model, self.appliance, self._remember_served)
        self.faults = Faults()
        self.requests = 0
        self.paths: Counter[str] = Counter()  # meter requests by path (a test counts telegram reads)
        self.served: deque[dict[str, object]] = deque(maxlen=SERVED_MAX)
        self.served_total = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file: Path | None = None
        self._server = HttpServer(self._handle, host, port, self._tls(cert_dir) if api == "v2" else None)

    def _tls(self, cert_dir: Path | None) -> ssl.SSLContext:
        if cert_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="p1-sim-")
            cert_dir = Path(self._tmp.name)
        files = make_certificates(cert_dir, f"appliance/p1dongle/{self.serial}")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(files.cert, files.key)
        self.ca_file = files.ca
        return context

    @property
    def token(self) -> str:
        return self.appliance.users.preset_token

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        await self._server.start()

    async def close(self) -> None:
        await self._server.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def press_button(self) -> None:
        self.appliance.pairing_until = time.monotonic() + PAIRING_WINDOW_S

    def state(self) -> dict[str, object]:
        second = self.clock.now()
        return {
            "second": second,
            "local": self.model.local(second).isoformat(),
            "flavour": self.model.flavour.name,
            "identified": self.appliance.identified,
            "system": self.appliance.system_v2(second),
        }

    async def _handle(self, request: Request) -> Response:
        if request.path.startswith("/_sim/"):
            return control.handle(self, request)
        self.requests += 1
        self.paths[request.path] += 1
        if self.faults.timeout:
            await asyncio.sleep(3600)  # cancelled when the client hangs up or the server closes
        if self.faults.api_disabled:
            return api_v1.error(*api_v1.API_DISABLED)
        if self.api == "v1":
            answer = api_v1.handle(self.device, request)
        else:
            answer = api_v2.handle(self.device, request)
        if self.faults.malformed and request.path in READING_PATHS and answer.status == 200:
            answer.body = answer.body[: len(answer.body) // 2]
        return answer

    def _remember_served(self, reading: MeterReading) -> None:
        if self.faults.malformed:
            return  # a broken answer is no reading
        self.served_total += 1
        self.served.append(
            {
                "n": self.served_total,
                "at": time.time(),
                "second": reading.second,
                "unique_id": reading.unique_id,
                "power_w": reading.power_w,
                "import_kwh": kwh(reading.import_total_wh),
                "export_kwh": kwh(reading.export_total_wh),
            }
        )
