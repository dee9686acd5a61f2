"""deploy/caddy/Caddyfile: `caddy validate`, and the routes it adapts to."""

import gzip
import json
import os
import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import httpx
import pytest

from p1_servicekit.testing import wait_until

HINT = "apt-get install caddy"
Runner = Callable[..., CompletedProcess[str]]


def caddy_env(tmp_path: Path) -> dict[str, str]:
    # loopback upstreams: validation provisions the proxy without any lookup of compose names
    return {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path),
        "P1_DOMAIN": "localhost",
        "INGEST_UPSTREAM": "127.0.0.1:8001",
        "QUERY_UPSTREAM": "127.0.0.1:8002",
    }


def test_caddy_validate(root: Path, tmp_path: Path, tool: Callable[[str, str], str], runner: Runner) -> None:
    res = runner(
        [tool("caddy", HINT), "validate", "--config", "deploy/caddy/Caddyfile", "--adapter", "caddyfile"],
        env=caddy_env(tmp_path),
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Valid configuration" in res.stdout + res.stderr


def test_caddyfile_is_formatted(root: Path, tool: Callable[[str, str], str], runner: Runner) -> None:
    res = runner([tool("caddy", HINT), "fmt", "deploy/caddy/Caddyfile"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == (root / "deploy/caddy/Caddyfile").read_text()


def _walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for v in node.values():
            found.extend(_walk(v))
    elif isinstance(node, list):
        for v in node:
            found.extend(_walk(v))
    return found


def test_routes_samples_to_ingest_and_the_rest_to_query(
    root: Path, tmp_path: Path, tool: Callable[[str, str], str], runner: Runner
) -> None:
    res = runner(
        [tool("caddy", HINT), "adapt", "--config", "deploy/caddy/Caddyfile", "--adapter", "caddyfile"],
        env=caddy_env(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout)
    server = next(iter(cfg["apps"]["http"]["servers"].values()))
    text = json.dumps(server)
    # the subroute matching /v1/samples proxies to ingest, the catch-all to query
    routes = [n for n in _walk(server) if "match" in n and "handle" in n]
    samples = [r for r in routes if {"path": ["/v1/samples"]} in r["match"]]
    assert samples
    assert "127.0.0.1:8001" in json.dumps(samples)
    assert "127.0.0.1:8002" not in json.dumps(samples)
    assert "127.0.0.1:8002" in text
    metrics = [r for r in routes if any("/metrics" in m.get("path", []) for m in r["match"])]
    assert metrics
    assert '"status_code": 404' in json.dumps(metrics)


class _Stub(BaseHTTPRequestHandler):
    """An upstream that answers with its own name, the path and the body size it got."""

    name = "stub"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        payload = json.dumps(
            {
                "upstream": self.name,
                "path": self.path,
                "got": len(body),
                "encoding": self.headers.get("Content-Encoding"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def _stub_server(name: str) -> ThreadingHTTPServer:
    handler = type(f"{name}Stub", (_Stub,), {"name": name})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_real_caddy_terminates_tls_and_routes(
    root: Path, tmp_path: Path, tool: Callable[[str, str], str]
) -> None:
    """Runs Caddy with the project's site block (global options moved to loopback test ports):
    TLS from its internal CA, /v1/samples (gzip body untouched) → ingest, the rest → query,
    /metrics → 404, plain HTTP → redirect to HTTPS."""
    exe = tool("caddy", HINT)
    ingest, query = _stub_server("ingest"), _stub_server("query")
    https_port, http_port, admin_port = _free_port(), _free_port(), _free_port()
    text = (root / "deploy/caddy/Caddyfile").read_text()
    text = re.sub(r"(?m)^\tadmin .*$", f"\tadmin 127.0.0.1:{admin_port}", text, count=1)
    text = text.replace(
        "{\n",
        "{\n\tdefault_bind 127.0.0.1\n"
        f"\thttp_port {http_port}\n\thttps_port {https_port}\n\tskip_install_trust\n",
        1,
    )
    conf = tmp_path / "Caddyfile"
    conf.write_text(text)
    env = caddy_env(tmp_path)
    env["INGEST_UPSTREAM"] = f"127.0.0.1:{ingest.server_address[1]}"
    env["QUERY_UPSTREAM"] = f"127.0.0.1:{query.server_address[1]}"
    log = (tmp_path / "caddy.log").open("wb")
    proc = subprocess.Popen(
        [exe, "run", "--config", str(conf), "--adapter", "caddyfile"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        root_ca = tmp_path / "data/caddy/pki/authorities/local/root.crt"
        base = f"https://localhost:{https_port}"

        def serving() -> httpx.Client | None:
            """A client trusting Caddy's internal CA, once Caddy answers through it."""
            if proc.poll() is not None:
                pytest.fail(f"caddy exited: {(tmp_path / 'caddy.log').read_text()[-3000:]}")
            if not root_ca.exists():
                return None
            c = httpx.Client(verify=ssl.create_default_context(cafile=str(root_ca)), timeout=5)
            try:
                c.get(f"{base}/healthz")
            except (httpx.HTTPError, ssl.SSLError):
                c.close()
                return None
            return c

        client = wait_until(
            serving, 30, lambda: f"caddy to serve: {(tmp_path / 'caddy.log').read_text()[-3000:]}", 0.2
        )
        try:
            gz = gzip.compress(b'{"device_id": "x", "samples": []}')
            r = client.post(
                f"{base}/v1/samples",
                content=gz,
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
            assert r.status_code == 200
            assert r.json() == {
                "upstream": "ingest",
                "path": "/v1/samples",
                "got": len(gz),
                "encoding": "gzip",
            }
            r = client.get(f"{base}/v1/devices/x/realtime")
            assert r.json()["upstream"] == "query"
            assert r.json()["path"] == "/v1/devices/x/realtime"
            assert client.get(f"{base}/v1/samples/extra").json()["upstream"] == "query"
            assert client.get(f"{base}/metrics").status_code == 404
            plain = httpx.get(f"http://localhost:{http_port}/v1/devices", timeout=5)
            assert plain.status_code in {301, 302, 307, 308}
            assert plain.headers["location"].startswith("https://")
        finally:
            client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        ingest.shutdown()
        query.shutdown()
        ingest.server_close()
        query.server_close()
