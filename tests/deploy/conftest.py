"""Shared helpers for the deployment validation tests (tests/deploy).

Every test here runs a real validator (promtool, caddy, kubectl kustomize, kubernetes-validate,
check-jsonschema, hadolint). A missing validator skips its tests with the reason, locally; CI installs
them all (deploy/ci-install.sh) and sets P1_DEPLOY_REQUIRE_TOOLS=1, which turns those skips into failures.
"""

import contextlib
import copy
import importlib.util
import os
import re
import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from p1_servicekit.testing import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]

# The binding metric names (docs/design.md §12); histograms also expose _bucket/_sum/_count.
KNOWN_METRICS = frozenset(
    {
        "p1_http_requests_total",
        "p1_http_request_duration_seconds",
        "p1_ingest_samples_total",
        "p1_ingest_samples_rejected_total",
        "p1_ingest_batch_size",
        "p1_ingest_db_write_seconds",
        "p1_device_last_sample_timestamp_seconds",
        "p1_db_errors_total",
        "p1_redis_errors_total",
        "p1_redis_up",
        "p1_query_cache_total",
        "p1_query_db_seconds",
        "p1_query_price_sums_failures_total",
        "p1_edge_polls_total",
        "p1_edge_spool_depth",
        "p1_edge_spool_oldest_age_seconds",
        "p1_edge_spool_dropped_total",
        "p1_edge_quarantined_samples_total",
        "p1_edge_upload_batches_total",
        "p1_edge_uploaded_samples_total",
        "p1_edge_last_upload_timestamp_seconds",
        # ingest's series of the edges' reports (SampleBatch `edge`), per device of its token table
        "p1_edge_report_timestamp_seconds",
        "p1_edge_report_spool_depth",
        "p1_edge_report_spool_oldest_age_seconds",
        "p1_edge_report_quarantined_samples",
        "p1_edge_report_spool_dropped_samples_total",
        "p1_edge_report_meter_errors_total",
        "p1_edge_report_uptime_seconds",
        "p1_edge_report_info",
    }
)
KNOWN_TABLES = frozenset({"devices", "samples", "rollup_15m", "rollup_1h", "rollup_1d"})


def base_metric(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in KNOWN_METRICS:
            return name[: -len(suffix)]
    return name


def find_tool(name: str) -> str | None:
    """The executable from the project's venv first, then PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which(name, path=search)


def _require(name: str, install_hint: str) -> str:
    path = find_tool(name)
    if path is None:
        reason = f"{name} not installed ({install_hint})"
        if os.environ.get("P1_DEPLOY_REQUIRE_TOOLS") == "1":
            pytest.fail(reason + "; P1_DEPLOY_REQUIRE_TOOLS=1 demands it")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def tool() -> Callable[[str, str], str]:
    """tool("promtool", "apt-get install prometheus") → path, or skip (fail under CI's flag)."""
    return _require


def run(
    cmd: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def which() -> Callable[[str], str | None]:
    """find_tool: venv first, then PATH; None when absent (never skips)."""
    return find_tool


@pytest.fixture(scope="session")
def runner() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def known_metrics() -> frozenset[str]:
    return KNOWN_METRICS


@pytest.fixture(scope="session")
def metric_base() -> Callable[[str], str]:
    return base_metric


def _load_kustomize_lite() -> Any:
    spec = importlib.util.spec_from_file_location(
        "p1_kustomize_lite", Path(__file__).with_name("kustomize_lite.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def kustomize_lite() -> Any:
    """tests/deploy/kustomize_lite.py (render_kustomization), the fallback when kubectl is absent."""
    return _load_kustomize_lite()


@pytest.fixture(scope="session")
def k8s_render(kustomize_lite: Any) -> Callable[[str], list[dict[str, Any]]]:
    """Render k8s/<target> with `kubectl kustomize`, or with kustomize_lite where kubectl is absent."""
    cache: dict[str, list[dict[str, Any]]] = {}

    def render(target: str) -> list[dict[str, Any]]:
        if target not in cache:
            kubectl = find_tool("kubectl")
            if kubectl is None:
                docs = kustomize_lite.render_kustomization(ROOT / "k8s" / target)
            else:
                res = run([kubectl, "kustomize", str(ROOT / "k8s" / target)], timeout=60)
                assert res.returncode == 0, res.stderr
                docs = [d for d in yaml.safe_load_all(res.stdout) if d]
            cache[target] = docs
        return copy.deepcopy(cache[target])

    return render


@dataclass(frozen=True)
class Caddy:
    """The project's Caddy site block running on test ports, TLS from its internal CA."""

    base: str  # https://localhost:<port>
    root_ca: Path  # the internal CA's root, as the edge's CA_BUNDLE would get it
    http_port: int


@contextlib.contextmanager
def project_caddy(exe: str, tmp_path: Path, ingest: str, query: str) -> Iterator[Caddy]:
    """Runs deploy/caddy/Caddyfile with its global options moved to loopback test ports, upstreams
    ``ingest`` and ``query`` (host:port); stopped afterwards."""
    https_port, http_port, admin_port = free_port(), free_port(), free_port()
    text = (ROOT / "deploy/caddy/Caddyfile").read_text()
    text = re.sub(r"(?m)^\tadmin .*$", f"\tadmin 127.0.0.1:{admin_port}", text, count=1)
    text = text.replace(
        "{\n",
        "{\n\tdefault_bind 127.0.0.1\n"
        f"\thttp_port {http_port}\n\thttps_port {https_port}\n\tskip_install_trust\n",
        1,
    )
    conf = tmp_path / "Caddyfile"
    conf.write_text(text)
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path),
        "P1_DOMAIN": "localhost",
        "INGEST_UPSTREAM": ingest,
        "QUERY_UPSTREAM": query,
    }
    log_path = tmp_path / "caddy.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [exe, "run", "--config", str(conf), "--adapter", "caddyfile"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            caddy = Caddy(
                f"https://localhost:{https_port}",
                tmp_path / "data/caddy/pki/authorities/local/root.crt",
                http_port,
            )
            wait_until(
                lambda: _serving(proc, caddy, log_path),
                30,
                lambda: f"caddy to serve: {log_path.read_text()[-3000:]}",
                0.2,
            )
            yield caddy
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _serving(proc: subprocess.Popen[bytes], caddy: Caddy, log: Path) -> bool:
    """True once Caddy answers through its own CA."""
    if proc.poll() is not None:
        pytest.fail(f"caddy exited: {log.read_text()[-3000:]}")
    if not caddy.root_ca.exists():
        return False
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(caddy.root_ca)), timeout=5) as c:
            c.get(f"{caddy.base}/healthz")
    except (httpx.HTTPError, ssl.SSLError):
        return False
    return True


@pytest.fixture(scope="session")
def caddy_site() -> Callable[..., contextlib.AbstractContextManager[Caddy]]:
    """project_caddy(exe, tmp_path, ingest, query): the project's site block on test ports."""
    return project_caddy
