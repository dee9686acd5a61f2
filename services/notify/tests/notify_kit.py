"""Real parts for notify's tests: a local HTTP receiver that Apprise's ``json://`` and ``ntfy://`` URLs
point at (127.0.0.1), ``p1-notify run`` as a process, and readings written through a real ingest."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from p1_servicekit.testing import ServiceProcess, Webhook, console_script, free_port

WRITE_TOKEN = "notify-test-write"


def write_token(device_id: str) -> str:
    """Ingest's device tokens write one device each."""
    return f"{WRITE_TOKEN}-{device_id}"


@dataclass
class Received:
    path: str
    body: dict[str, object] | str
    at: float  # time.time() when it arrived

    @property
    def where(self) -> str:
        """The path, or for ntfy (which posts JSON to ``/`` naming its topic) ``/<topic>``."""
        if self.path == "/" and isinstance(self.body, dict) and "topic" in self.body:
            return f"/{self.body['topic']}"
        return self.path

    @property
    def text(self) -> str:
        """The message text: Apprise's JSON ``message``, or ntfy's plain body."""
        if isinstance(self.body, dict):
            return str(self.body.get("message", ""))
        return self.body


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST; paths under ``/fail`` answer 500."""

    received: list[Received] = field(default_factory=list)
    _hook: Webhook | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self._hook is not None, "start() the receiver first"
        return self._hook.port

    def start(self) -> Receiver:
        self._hook = Webhook(self._record)
        return self

    def _record(self, path: str, raw_bytes: bytes) -> int:
        raw = raw_bytes.decode("utf-8", "replace")
        try:
            body: dict[str, object] | str = json.loads(raw)
        except ValueError:
            body = raw
        with self._lock:
            self.received.append(Received(path, body, time.time()))
        return 500 if path.startswith("/fail") else 200

    def at(self, path_prefix: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.where.startswith(path_prefix)]

    def stop(self) -> None:
        if self._hook is not None:
            self._hook.stop()


def write_config(path: Path, text: str) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def notify_process(
    workdir: Path, database_url: str, config: Path, redis_url: str | None, name: str = "notify"
) -> ServiceProcess:
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "NOTIFY_CONFIG": str(config),
        "NOTIFY_CONFIG_POLL_S": "0.2",
        "NOTIFY_PG_POLL_S": "0.2",
        "NOTIFY_BACKOFF_S": "0.05",
        "NOTIFY_SEND_TIMEOUT_S": "5",
        "LOG_LEVEL": "INFO",
        "REDIS_URL": redis_url or "",
        "DB_ACQUIRE_TIMEOUT_S": "1",
    }
    return ServiceProcess(
        [console_script("p1-notify"), "run", "--port", str(port)],
        env,
        port,
        log_path=workdir / f"{name}.log",
    )


def ingest_process(
    workdir: Path, database_url: str, redis_url: str | None, devices: list[str]
) -> ServiceProcess:
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "DEVICE_TOKENS": ",".join(f"{write_token(d)}:{d}" for d in devices),
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_S": "1000",
        "RATE_LIMIT_BURST": "1000",
        "REDIS_URL": redis_url or "",
    }
    return ServiceProcess(
        [console_script("p1-ingest"), "serve", "--port", str(port)],
        env,
        port,
        log_path=workdir / "ingest.log",
    )


@dataclass
class Meter:
    """A device's readings at chosen instants: power held, the import counter integrated from it."""

    device_id: str
    ts: datetime
    import_kwh: float = 1000.0

    def readings(self, seconds: int, power_w: float, step_s: int = 10) -> list[dict[str, object]]:
        out = []
        for _ in range(0, seconds, step_s):
            self.ts += timedelta(seconds=step_s)
            self.import_kwh += power_w / 1000 * step_s / 3600
            out.append(
                {
                    "ts": self.ts.isoformat().replace("+00:00", "Z"),
                    "power_w": power_w,
                    "import_kwh": round(self.import_kwh, 6),
                    "export_kwh": 0.0,
                }
            )
        return out


def upload(ingest: ServiceProcess, device_id: str, samples: list[dict[str, object]]) -> None:
    """Each reading as its own batch (as a live edge sends them), so each is published."""
    with httpx.Client(base_url=ingest.base_url, timeout=30) as http:
        for sample in samples:
            r = http.post(
                "/v1/samples",
                json={"device_id": device_id, "samples": [sample]},
                headers={"Authorization": f"Bearer {write_token(device_id)}"},
            )
            assert r.status_code == 200, r.text


def quarter_start(day: int, hour: int, minute: int) -> datetime:
    """A quarter of November 2026 (a month with no other test data): readings are judged by their own
    time, so tests write any quarter without waiting for it."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def metrics(proc: ServiceProcess) -> str:
    try:
        return httpx.get(proc.base_url + "/metrics", timeout=2).text
    except httpx.HTTPError:
        return ""
