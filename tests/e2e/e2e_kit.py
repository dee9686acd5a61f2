"""The whole system as real processes on 127.0.0.1, and the accounting that proves exactly-once.

A :class:`Stack` is a v2 meter simulator (HTTPS, bearer token), ``p1-edge run``, ``p1-ingest serve`` and
``p1-query serve``. The simulator speaks API v2 on purpose: v2 readings carry the meter's own
whole-second timestamp, so the edge stores each telegram under the second the meter gave it and skips
only a re-read of the same telegram (same second, same values). That makes the expected content of
storage exact: one row per distinct second the simulator served, with that second's values.

The simulator lists what it served at ``GET /_sim/served``. :func:`check_exactly_once` compares that
with the query service's raw export (every stored reading): no second missing, none extra, none twice,
values equal. The only readings a test may excuse are passed explicitly, with the proof that they were
never committed to the edge's spool.

API v1 has no reading time: the edge stamps a reading with the whole second it polled in, which the
meter never sees. :func:`check_v1_exactly_once` therefore matches on values and order: with polls 2 s
apart no two polls share a second (the edge's only reason to drop a reading), so served and stored
readings must pair up one to one, in order, each stored under a second at most the client timeout
before the second the meter served it in.
"""

from __future__ import annotations

import json
import re
import signal
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from p1_edge.spoolfile import readings_in_file
from p1_servicekit.testing import ServiceProcess, console_script, free_port, port_open, wait_until

METER_TOKEN = "e2e-meter-token"
WRITE_TOKEN = "e2e-write"
READ_TOKEN = "e2e-read"
VALUES = ("power_w", "import_kwh", "export_kwh")


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if m is None or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def _metrics(url: str) -> str:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return ""


def spooled(path: Path) -> dict[int, dict[str, object]]:
    """The readings committed in a spool file, by second (read as another process would)."""
    return {round(ts): body for ts, body in readings_in_file(path) or []}


def spool_depth(path: Path) -> int:
    return len(spooled(path))


@dataclass
class Simulator:
    """``p1-edge simulate`` as a real process (API v2 unless told otherwise)."""

    workdir: Path
    api: str = "v2"
    port: int = field(default_factory=free_port)
    proc: ServiceProcess | None = None
    extra: tuple[str, ...] = ()  # more `p1-edge simulate` options (profile, start, speed, country)

    @property
    def ca_file(self) -> Path:
        return self.workdir / "meter-ca.pem"

    @property
    def url(self) -> str:
        return f"{'https' if self.api == 'v2' else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> Simulator:
        argv = [console_script("p1-edge"), "simulate", "--port", str(self.port), "--api", self.api]
        if self.api == "v2":
            argv += ["--token", METER_TOKEN, "--ca-out", str(self.ca_file)]
        argv += list(self.extra)
        self.proc = ServiceProcess(
            argv, {}, self.port, ready_path=None, log_path=self.workdir / "simulator.log"
        ).start()
        wait_until(
            lambda: port_open(self.port) and (self.api == "v1" or self.ca_file.exists()), 30, "the simulator"
        )
        return self

    def _client(self) -> httpx.Client:
        if self.api == "v1":
            return httpx.Client(base_url=self.url, timeout=10)
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.check_hostname = False  # the meter's certificate names appliance/p1dongle/<serial>
        return httpx.Client(base_url=self.url, verify=context, timeout=10)

    def served(self) -> list[dict[str, object]]:
        with self._client() as http:
            body = http.get("/_sim/served").json()
        readings: list[dict[str, object]] = body["readings"]
        assert body["total"] == len(readings), "more served than the simulator remembers"
        return readings

    def faults(self, **switches: bool) -> None:
        with self._client() as http:
            r = http.post("/_sim/faults", json=switches)
        assert r.status_code == 200, r.text

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def served_seconds(served: Iterable[Mapping[str, object]]) -> dict[int, tuple[float, float, float]]:
    """The readings the simulator served, by meter second; re-reads of one second must agree."""
    out: dict[int, tuple[float, float, float]] = {}
    for r in served:
        second = int(str(r["second"]))
        values = tuple(float(str(r[k])) for k in VALUES)
        assert out.setdefault(second, values) == values, f"second {second} served with two values"
    return out


@dataclass
class Stack:
    """Simulator → edge → ingest → query on free ports; storage and Redis given by the test."""

    workdir: Path
    database_url: str
    device: str
    redis_url: str | None = None
    api: str = "v2"  # the meter's API
    ingest_url: str | None = None  # where the edge uploads (default: ingest itself)
    ca_bundle: Path | None = None
    edge_extra: dict[str, str] = field(default_factory=dict)  # more edge settings for one test
    sim: Simulator | None = None
    ingest: ServiceProcess | None = None
    query: ServiceProcess | None = None
    edge: ServiceProcess | None = None
    ingest_port: int = field(default_factory=free_port)
    query_port: int = field(default_factory=free_port)
    edge_port: int = field(default_factory=free_port)
    _stopped: list[ServiceProcess] = field(default_factory=list)

    @property
    def spool(self) -> Path:
        return self.workdir / "spool.sqlite"

    def server_env(self) -> dict[str, str]:
        env = {
            "DATABASE_URL": self.database_url,
            "LOG_LEVEL": "INFO",
            "RETRY_AFTER_S": "1",
            "DB_ACQUIRE_TIMEOUT_S": "1",
        }
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    def start(self) -> Stack:
        """Spawns everything at once (process start-up dominates on 2 cores), then waits for each."""
        ingest = self.start_ingest(wait=False)
        self.query = ServiceProcess(
            [console_script("p1-query"), "serve", "--port", str(self.query_port)],
            {**self.server_env(), "READ_TOKENS": f"{READ_TOKEN}:{self.device}"},
            self.query_port,
            log_path=self.workdir / "query.log",
        ).start(wait=False)
        self.sim = Simulator(self.workdir, self.api).start()
        edge = self.start_edge(wait=False)
        for proc in (ingest, self.query, edge):
            proc.wait_ready(60)
        return self

    def start_ingest(self, wait: bool = True) -> ServiceProcess:
        self.ingest = ServiceProcess(
            [console_script("p1-ingest"), "serve", "--port", str(self.ingest_port)],
            {**self.server_env(), "DEVICE_TOKENS": f"{WRITE_TOKEN}:{self.device}"},
            self.ingest_port,
            log_path=self.workdir / "ingest.log",
        ).start(60, wait=wait)
        return self.ingest

    def start_edge(self, wait: bool = True) -> ServiceProcess:
        assert self.sim is not None
        env = {
            "P1_HOST": f"127.0.0.1:{self.sim.port}",
            "P1_API": self.api,
            "INGEST_URL": self.ingest_url or f"http://127.0.0.1:{self.ingest_port}",
            "DEVICE_TOKEN": WRITE_TOKEN,
            "DEVICE_ID": self.device,
            "SPOOL_PATH": str(self.spool),
            "METRICS_HOST": "127.0.0.1",
            "METRICS_PORT": str(self.edge_port),
            "POLL_INTERVAL_S": "1",
            "UPLOAD_INTERVAL_S": "0.5",
            "BACKOFF_MAX_S": "2",
            "LOG_LEVEL": "INFO",
        }
        if self.api == "v2":
            env |= {"P1_TOKEN": METER_TOKEN, "P1_CA_FILE": str(self.sim.ca_file)}
        else:
            env["POLL_INTERVAL_S"] = "2"  # see check_v1_exactly_once
        if self.ca_bundle is not None:
            env["CA_BUNDLE"] = str(self.ca_bundle)
        env.update(self.edge_extra)
        self.edge = ServiceProcess(
            [console_script("p1-edge"), "run"],
            env,
            self.edge_port,
            ready_path="/healthz",
            log_path=self.workdir / "edge.log",
        ).start(60, wait=wait)
        return self.edge

    def edge_metrics(self) -> str:
        return _metrics(f"http://127.0.0.1:{self.edge_port}/metrics")

    def ingest_metrics(self) -> str:
        return _metrics(f"http://127.0.0.1:{self.ingest_port}/metrics")

    def query_metrics(self) -> str:
        return _metrics(f"http://127.0.0.1:{self.query_port}/metrics")

    def query_get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.query_port}{path}",
            params=params,
            headers={"Authorization": f"Bearer {READ_TOKEN}"},
            timeout=10,
        )

    def upload_errors(self) -> float:
        return metric_sum(self.edge_metrics(), "p1_edge_upload_batches_total", result="error")

    def kill(self, proc: ServiceProcess) -> float:
        """SIGKILL (the whole process group) and reap; returns the time it was surely dead."""
        proc.kill()
        proc.stop()  # reaped already: only closes the log
        self._stopped.append(proc)
        return time.time()

    def terminate_edge(self) -> int | None:
        """SIGTERM: the edge stops polling and finishes the batch in flight; returns its exit code."""
        assert self.edge is not None
        self.edge.signal(signal.SIGTERM)
        assert self.edge.proc is not None
        try:
            code = self.edge.proc.wait(60)
        except subprocess.TimeoutExpired:
            raise AssertionError("edge still running 60 s after SIGTERM:\n" + self.edge.logs()) from None
        self.edge.stop()  # closes the log
        self._stopped.append(self.edge)
        return code

    def export(self, client: httpx.Client | None = None) -> list[dict[str, object]]:
        """Every stored reading of the device, through the query service's raw export."""
        start = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        end = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        r = httpx.get(
            f"http://127.0.0.1:{self.query_port}/v1/devices/{self.device}/export",
            params={"start": start, "end": end, "bucket": "raw", "format": "ndjson"},
            headers={"Authorization": f"Bearer {READ_TOKEN}"},
            timeout=30,
        )
        if r.status_code == 404:
            return []
        assert r.status_code == 200, r.text
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]

    def exported_seconds(self) -> int:
        try:
            return len(self.export())
        except (httpx.HTTPError, AssertionError):
            return 0

    def wait_streaming(self, readings: int, timeout_s: float = 60) -> None:
        """Until at least ``readings`` have gone all the way into storage."""
        wait_until(
            lambda: self.exported_seconds() >= readings,
            timeout_s,
            f"{readings} readings through the whole chain\n{self.logs()}",
            step_s=0.5,
        )

    def quiesce_meter(self, timeout_s: float = 30) -> None:
        """Switch the meter's API off and wait until the edge has seen that: polls are sequential and a
        reading is committed before the next poll starts, so from then on every reading served is in
        the spool (or already stored), and no new one comes."""
        assert self.sim is not None
        before = metric_sum(self.edge_metrics(), "p1_edge_polls_total", result="needs_user")
        self.sim.faults(api_disabled=True)
        wait_until(
            lambda: metric_sum(self.edge_metrics(), "p1_edge_polls_total", result="needs_user") > before,
            timeout_s,
            "a poll refused by the meter after its API was switched off",
            step_s=0.2,
        )

    def drain(self, timeout_s: float = 90) -> None:
        """Until the edge's spool is empty (everything acknowledged by ingest)."""
        wait_until(
            lambda: spool_depth(self.spool) == 0,
            timeout_s,
            f"the spool to drain\n{self.logs()}",
            step_s=0.25,
        )

    def logs(self) -> str:
        parts = []
        for name in ("edge", "ingest", "query", "simulator"):
            path = self.workdir / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name} ---\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        for proc in (self.edge, self.query, self.ingest):
            if proc is not None:
                proc.stop()
        if self.sim is not None:
            self.sim.stop()


def stored_seconds(exported: Iterable[Mapping[str, object]]) -> set[int]:
    return {round(datetime.fromisoformat(str(r["ts"])).timestamp()) for r in exported}


StackFactory = Callable[..., Stack]


def check_exactly_once(
    served: list[dict[str, object]],
    exported: list[dict[str, object]],
    excused: Mapping[int, str] | None = None,
) -> int:
    """Every second the simulator served is stored exactly once with the served values.

    ``excused``: seconds that may be missing, each with the reason the test proved (never committed).
    Returns the number of readings checked.
    """
    expected = served_seconds(served)
    counts = Counter(round(datetime.fromisoformat(str(r["ts"])).timestamp()) for r in exported)
    twice = {ts: n for ts, n in counts.items() if n > 1}
    assert not twice, f"stored more than once: {twice}"
    stored = {
        round(datetime.fromisoformat(str(r["ts"])).timestamp()): tuple(float(str(r[k])) for k in VALUES)
        for r in exported
    }
    extra = sorted(set(stored) - set(expected))
    assert not extra, f"stored but never served: {extra}"
    missing = sorted(set(expected) - set(stored))
    unexcused = [ts for ts in missing if ts not in (excused or {})]
    assert not unexcused, f"served but lost: {unexcused} (of {len(expected)}; stored {len(stored)})"
    wrong = {ts: (stored[ts], expected[ts]) for ts in stored if stored[ts] != expected[ts]}
    assert not wrong, f"stored values differ from served (stored, served): {wrong}"
    return len(stored)


P1_TIMEOUT_S = 4  # the edge's default meter timeout: no reading is stored that took longer to come


def check_v1_exactly_once(
    served: list[dict[str, object]], exported: list[dict[str, object]], may_miss_last: bool = False
) -> int:
    """API v1: served and stored readings pair up one to one, in order, with equal values.

    ``may_miss_last``: the last served reading may be missing (a poll cancelled by a stop after the
    meter answered), which the caller has proved by its absence from the spool.
    """
    rows = sorted(exported, key=lambda r: datetime.fromisoformat(str(r["ts"])))
    stamps = [round(datetime.fromisoformat(str(r["ts"])).timestamp()) for r in rows]
    twice = [ts for ts, n in Counter(stamps).items() if n > 1]
    assert not twice, f"stored more than once: {twice}"
    expected = served[:-1] if may_miss_last and len(rows) == len(served) - 1 else served
    assert len(rows) == len(expected), f"served {len(served)} readings, stored {len(rows)}"
    for got, ts, want in zip(rows, stamps, expected, strict=True):
        got_values = tuple(float(str(got[k])) for k in VALUES)
        want_values = tuple(float(str(want[k])) for k in VALUES)
        assert got_values == want_values, f"reading #{want['n']}: stored {got_values}, served {want_values}"
        lag = int(str(want["second"])) - ts
        assert 0 <= lag <= P1_TIMEOUT_S, f"reading #{want['n']} stored at {ts}, served in {want['second']}"
    return len(rows)
