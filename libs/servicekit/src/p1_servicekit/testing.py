"""Helpers for tests against real parts: real service processes, waiting for them without sleeps, and
reading what they wrote (log lines, secrets). Throwaway databases are in ``testing_db``.

Imported only by tests and benchmarks; nothing in a service imports it.
"""

import asyncio
import contextlib
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote, quote_plus

import httpx

# uvicorn re-raises SIGTERM after its graceful shutdown, so a clean stop may report -15.
CLEAN_EXITS = (0, -signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Because = str | Callable[[], str]  # what is awaited; a callable is asked only on failure (for the state)
T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout_s: float,
    what: Because,
    step_s: float = 0.05,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """Polls ``predicate`` until it answers something truthy, and returns that; fails with ``what`` (and
    the last answer) after ``timeout_s``. An error of the ``ignoring`` types counts as "not yet"."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = predicate()
        except ignoring as exc:
            last: object = exc
        else:
            if answer:
                return answer
            last = answer
        _check(deadline, timeout_s, what, last)
        time.sleep(step_s)


async def eventually(
    predicate: Callable[[], T | Awaitable[T]],
    timeout_s: float,
    what: Because,
    step_s: float = 0.05,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """:func:`wait_until` for a test on an event loop: ``predicate`` may be a coroutine function, and
    the loop runs (servers, fakes) between polls."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer: T = await _settle(predicate())
        except ignoring as exc:
            last: object = exc
        else:
            if answer:
                return answer
            last = answer
        _check(deadline, timeout_s, what, last)
        await asyncio.sleep(step_s)


async def _settle(answer: T | Awaitable[T]) -> T:
    return await answer if inspect.isawaitable(answer) else answer


def _check(deadline: float, timeout_s: float, what: Because, last: object) -> None:
    if time.monotonic() > deadline:
        said = what if isinstance(what, str) else what()
        state = "" if last is None or last is False else f" (last: {last!r})"
        raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {said}{state}")


def log_records(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a process's output, in order; other lines (prints, tracebacks) skipped."""
    records = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and "msg" in record:
                records.append(record)
    return records


def logged(text: str, msg: str, **fields: object) -> bool:
    """True when a JSON log line of ``text`` says ``msg`` with these ``extra=`` field values."""
    return any(r["msg"] == msg and all(r.get(k) == v for k, v in fields.items()) for r in log_records(text))


def console_script(name: str) -> str:
    """Path of a console script of the venv that runs the tests."""
    return str(Path(sys.executable).with_name(name))


@dataclass
class ServiceProcess:
    """A real service process (uvicorn under our CLI) on a free port of 127.0.0.1."""

    argv: Sequence[str]
    env: Mapping[str, str]
    port: int
    ready_path: str | None = "/readyz"
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0, wait: bool = True) -> "ServiceProcess":
        """Spawns the process; waits for ``ready_path`` unless ``wait`` is false (then call
        :meth:`wait_ready` later, e.g. after spawning the other processes, to start them in parallel)."""
        env = {**os.environ, **self.env}
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            list(self.argv),
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait and self.ready_path is not None:
            self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                return httpx.get(self.base_url + str(self.ready_path), timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout_s, f"{self.base_url}{self.ready_path} to answer 200")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:]

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)
        if self._log is not None:
            self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


_TCP_ESTABLISHED = "01"


def established_peers(port: int) -> set[int]:
    """The client ports of the established IPv4 TCP connections whose local port is ``port``, as the
    kernel lists them (/proc/net/tcp): what a server still holds, whatever its own bookkeeping says."""
    peers = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state == _TCP_ESTABLISHED and int(local.rsplit(":", 1)[1], 16) == port:
            peers.add(int(remote.rsplit(":", 1)[1], 16))
    return peers


def redis_server(port: int | None = None) -> ServiceProcess:
    """A throwaway ``redis-server`` of a test's own (no persistence), not yet started.

    Start it with ``.start()`` and wait for it with ``wait_until(lambda: port_open(p.port), …)``.
    """
    p = port or free_port()
    argv = ["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return ServiceProcess(argv, {}, p, ready_path=None)


def secret_spellings(secret: str) -> set[str]:
    """The ways a secret could show in output: as is, URL-encoded (path or form), JSON-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def assert_no_secret(outputs: Mapping[str, str | bytes], secrets: Sequence[str]) -> None:
    """Fails naming the output and the secret when any spelling of a secret is in any output."""
    for where, text in outputs.items():
        data = text if isinstance(text, bytes) else text.encode(errors="replace")
        for secret in secrets:
            for spelling in secret_spellings(secret):
                assert spelling.encode() not in data, f"secret {secret[:4]}… appears in {where}"


class Webhook:
    """An HTTP server on 127.0.0.1 (a free port) for what p1-notify sends: every POST's path and body (at
    most ``max_bytes`` of it) go to ``on_post``, which answers the status to send back (None: 200)."""

    def __init__(self, on_post: Callable[[str, bytes], int | None], max_bytes: int = 1 << 20) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), max_bytes)
                status = on_post(self.path, self.rfile.read(length))
                self.send_response(status or 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
