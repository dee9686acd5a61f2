"""The simulator's HTTP(S) face: the meter's routes, fault switches and a pairing button.

Meter routes: ``GET /api``; v1 ``GET /api/v1/data``; v2 (HTTPS, bearer) ``GET /api/measurement``,
``POST /api/user``. Control routes for tests and demos (not part of any real meter):
``POST /_sim/faults`` ``{"timeout": bool, "api_disabled": bool, "malformed": bool}``,
``POST /_sim/replace-meter`` (counter reset), ``POST /_sim/button`` (opens pairing for 30 s),
``GET /_sim/served``: the readings served so far (the last ``SERVED_MAX``, oldest first, as the
contract's values plus the model's second and the serving time), so end-to-end tests can prove that
every reading the meter gave reached storage exactly once.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from p1_edge.httpserver import HttpServer, Request, Response
from p1_edge.simulator import payloads
from p1_edge.simulator.model import MeterModel
from p1_edge.simulator.profiles import PROFILES
from p1_edge.simulator.tls import make_certificates

PAIRING_WINDOW_S = 30.0
SERVED_MAX = 100_000  # readings remembered for GET /_sim/served (~28 h at 1 Hz)


@dataclass
class Faults:
    timeout: bool = False  # never answer (the client's timeout fires)
    api_disabled: bool = False  # 403 "API not enabled"
    malformed: bool = False  # a truncated JSON body


class Simulator:
    def __init__(
        self,
        *,
        api: Literal["v1", "v2"] = "v1",
        profile: str = "home",
        host: str = "127.0.0.1",
        port: int = 0,
        serial: str | None = None,
        token: str | None = None,
        tz: ZoneInfo | None = None,
        cert_dir: Path | None = None,
    ) -> None:
        self.api = api
        self.serial = serial or ("3c39e7aabbcc" if api == "v1" else "5c2fafaabbcc")
        self.token = token or secrets.token_hex(16)
        self.model = MeterModel(PROFILES[profile], tz or ZoneInfo("Europe/Brussels"))
        self.faults = Faults()
        self.requests = 0
        self.served: deque[dict[str, object]] = deque(maxlen=SERVED_MAX)
        self.served_total = 0
        self._button_until = 0.0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file: Path | None = None
        context: ssl.SSLContext | None = None
        if api == "v2":
            if cert_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="p1-sim-")
                cert_dir = Path(self._tmp.name)
            files = make_certificates(cert_dir, f"appliance/p1dongle/{self.serial}")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(files.cert, files.key)
            self.ca_file = files.ca
        self._server = HttpServer(self._handle, host, port, context)

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
        self._button_until = time.monotonic() + PAIRING_WINDOW_S

    async def _handle(self, request: Request) -> Response:
        if request.path.startswith("/_sim/"):
            return self._control(request)
        self.requests += 1
        if self.faults.timeout:
            await asyncio.sleep(3600)  # cancelled when the client hangs up or the server closes
        if self.faults.api_disabled:
            return _json(403, {"error": {"id": 202, "description": "API not enabled"}})
        key = (request.method, request.path)
        if key == ("GET", "/api"):
            return _json(
                200, payloads.device_v1(self.serial) if self.api == "v1" else payloads.device_v2(self.serial)
            )
        if self.api == "v1" and key == ("GET", "/api/v1/data"):
            return self._reading(payloads.data_v1)
        if self.api == "v2" and key == ("POST", "/api/user"):
            if time.monotonic() < self._button_until:
                return _json(200, {"token": self.token, "name": "local/p1-edge"})
            return _json(403, {"error": "user:creation-not-enabled"})
        if self.api == "v2" and key == ("GET", "/api/measurement"):
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return _json(401, {"error": "user:unauthorized"})
            return self._reading(payloads.measurement_v2)
        return _json(404, {"error": "not found"})

    def _reading(self, render: payloads.Renderer) -> Response:
        self.model.now()
        body = json.dumps(render(self.model)).encode()
        if self.faults.malformed:
            body = body[: len(body) // 2]
        else:
            self._remember_served()
        return Response(200, body)

    def _remember_served(self) -> None:
        st = self.model.state
        self.served_total += 1
        self.served.append(
            {
                "n": self.served_total,
                "at": time.time(),
                "second": st.second,
                "unique_id": self.model.unique_id(),
                "power_w": st.load.total,
                "import_kwh": payloads._kwh(sum(st.import_j)),
                "export_kwh": payloads._kwh(sum(st.export_j)),
            }
        )

    def _control(self, request: Request) -> Response:
        if (request.method, request.path) == ("GET", "/_sim/served"):
            return _json(200, {"total": self.served_total, "readings": list(self.served)})
        if request.method != "POST":
            return _json(405, {"error": "POST only"})
        if request.path == "/_sim/faults":
            try:
                wanted = json.loads(request.body or b"{}")
            except ValueError:
                return _json(400, {"error": "JSON object expected"})
            if not isinstance(wanted, dict):
                return _json(400, {"error": "JSON object expected"})
            for name in ("timeout", "api_disabled", "malformed"):
                if name in wanted:
                    setattr(self.faults, name, bool(wanted[name]))
            return _json(200, vars(self.faults))
        if request.path == "/_sim/replace-meter":
            self.model.now()
            self.model.replace_meter()
            return _json(200, {"unique_id": self.model.unique_id()})
        if request.path == "/_sim/button":
            self.press_button()
            return _json(200, {"pairing_open_s": PAIRING_WINDOW_S})
        return _json(404, {"error": "not found"})


def _json(status: int, body: object) -> Response:
    return Response(status, json.dumps(body).encode())
