"""Real fakes for the edge's tests: an ingest server on 127.0.0.1 and a real `p1-edge` process.

The fake ingest keeps the contract's promises that the edge relies on: it validates with the contract
models, rejects readings more than 5 minutes ahead with 422, stores idempotently on (device_id, ts)
and answers only after "storing". Switches simulate an outage (503 + Retry-After), 401, 413 and an
answer held back (to kill the edge while a stored batch's answer is in flight).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import ValidationError

from p1_contracts.models import Meter, Sample, SampleBatch
from p1_edge.httpserver import HttpServer, Request, Response
from p1_edge.simulator.tls import make_certificates
from p1_edge.spool import Spool
from p1_edge.spoolfile import stats_in_file
from p1_servicekit.testing import ServiceProcess, console_script, eventually


def append_many(spool: Spool, device_id: str, meter: Meter | None, samples: Sequence[Sample]) -> int:
    """Commits readings in one transaction (``Spool.append_json``), as a backlog; returns drops."""
    rows = [(s.ts.timestamp(), s.model_dump_json(exclude_none=True)) for s in samples]
    return spool.append_json(device_id, meter, rows)


def spool_depth(path: Path) -> int:
    """Readings waiting in a spool file, as another process sees them; -1 while there is none yet."""
    stats = stats_in_file(path)
    return -1 if stats is None else stats.depth


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = {"type": "about:blank", "title": "error", "status": status, "detail": detail}
    return Response(status, json.dumps(body).encode(), "application/problem+json", headers or {})


@dataclass
class FakeIngest:
    tokens: Mapping[str, str]  # token → device_id
    stored: dict[tuple[str, float], dict[str, object]] = field(default_factory=dict)
    meters: dict[str, object] = field(default_factory=dict)
    answers: list[int] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    duplicates: int = 0
    down: bool = False  # 503 + Retry-After: 1
    unauthorized: bool = False  # 401 for every token
    max_samples: int | None = None  # 413 above this
    hold: asyncio.Event | None = None  # store, then wait for this before answering
    held: int = 0  # answers currently held back
    tls: ssl.SSLContext | None = None  # serve HTTPS (as Caddy in front of ingest would)
    _server: HttpServer | None = None

    async def start(self) -> FakeIngest:
        self._server = HttpServer(self._handle, ssl_context=self.tls)
        await self._server.start()
        return self

    async def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._server is not None:
            await self._server.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.port}"

    def count(self, device_id: str) -> int:
        return sum(1 for d, _ in self.stored if d == device_id)

    async def _handle(self, request: Request) -> Response:
        response = await self._answer(request)
        self.answers.append(response.status)
        return response

    async def _answer(self, request: Request) -> Response:
        if (request.method, request.path) != ("POST", "/v1/samples"):
            return _problem(404, "no such route")
        if self.down:
            return _problem(503, "database unavailable", {"Retry-After": "1"})
        auth = request.headers.get("authorization", "")
        device = self.tokens.get(auth.removeprefix("Bearer "))
        if self.unauthorized or device is None:
            return _problem(401, "unknown token")
        body = request.body
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        try:
            batch = SampleBatch.model_validate_json(body)
        except ValidationError as exc:
            return _problem(422, str(exc)[:300])
        if batch.device_id != device:
            return _problem(403, "token of another device")
        self.batch_sizes.append(len(batch.samples))
        if self.max_samples is not None and len(batch.samples) > self.max_samples:
            return _problem(413, "too many samples")
        horizon = datetime.now(UTC) + timedelta(minutes=5)
        for i, sample in enumerate(batch.samples):
            if sample.ts > horizon:
                return _problem(422, f"samples[{i}].ts is more than 5 minutes in the future")
        accepted = 0
        for sample in batch.samples:
            key = (batch.device_id, sample.ts.timestamp())
            if key in self.stored:
                self.duplicates += 1
            else:
                self.stored[key] = sample.model_dump(exclude_none=True)
                accepted += 1
        if batch.meter is not None:
            self.meters[batch.meter.serial] = batch.meter
        if self.hold is not None:  # "committed", but the answer is not out yet
            self.held += 1
            await self.hold.wait()
            self.held -= 1
        result = {"accepted": accepted, "duplicates": len(batch.samples) - accepted}
        return Response(200, json.dumps(result).encode())


@dataclass
class EdgeProcess:
    """`p1-edge run` as a real child process with its own environment."""

    env: Mapping[str, str]
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))
    proc: asyncio.subprocess.Process | None = None

    async def start(self) -> EdgeProcess:
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                console_script("p1-edge"),
                "run",
                env={**os.environ, **self.env},
                stdout=log,
                stderr=log,
            )
        return self

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def terminate(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout_s)

    async def kill(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), 10)


def edge_env(
    *,
    meter: str,
    ingest_url: str,
    token: str,
    spool: Path,
    metrics_port: int = 0,
    **extra: str,
) -> dict[str, str]:
    env = {
        "P1_HOST": meter,
        "INGEST_URL": ingest_url,
        "DEVICE_TOKEN": token,
        "SPOOL_PATH": str(spool),
        "METRICS_PORT": str(metrics_port),
        "METRICS_HOST": "127.0.0.1",
        "POLL_INTERVAL_S": "0.5",
        "UPLOAD_INTERVAL_S": "0.2",
        "BACKOFF_MAX_S": "2",
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


def private_ca_server_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A private CA (like Caddy's internal one) and a server certificate for 127.0.0.1."""
    files = make_certificates(directory, "127.0.0.1", ip_address="127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    return context, files.ca


def ingest_process(database_url: str, port: int, tokens: str) -> ServiceProcess:
    """The real ``p1-ingest serve`` (``tokens``: its DEVICE_TOKENS); start it, then await :func:`ready`."""
    return ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(port)],
        {"DATABASE_URL": database_url, "DEVICE_TOKENS": tokens, "LOG_LEVEL": "WARNING"},
        port,
        ready_path=None,  # readiness is awaited by ready() without blocking the event loop
    )


async def ready(proc: ServiceProcess, timeout_s: float = 30) -> ServiceProcess:
    """Awaits the process's /readyz without blocking the event loop (fakes and the simulator run on it)."""

    async def answers() -> bool:
        assert proc.proc is not None
        assert proc.proc.poll() is None, proc.logs()
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(proc.base_url + "/readyz", timeout=1)).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(answers, timeout_s, lambda: "ingest to be ready:\n" + proc.logs())
    return proc
