"""deploy/caddy/Caddyfile: `caddy validate`, and the routes it adapts to."""

import gzip
import json
import os
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import httpx

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


def test_real_caddy_terminates_tls_and_routes(
    tmp_path: Path, tool: Callable[[str, str], str], caddy_site: Callable[..., Any]
) -> None:
    """Runs Caddy with the project's site block (global options moved to loopback test ports):
    TLS from its internal CA, /v1/samples (gzip body untouched) → ingest, the rest → query,
    /metrics → 404, plain HTTP → redirect to HTTPS."""
    exe = tool("caddy", HINT)
    ingest, query = _stub_server("ingest"), _stub_server("query")
    upstreams = (f"127.0.0.1:{ingest.server_address[1]}", f"127.0.0.1:{query.server_address[1]}")
    try:
        with (
            caddy_site(exe, tmp_path, *upstreams) as caddy,
            httpx.Client(verify=ssl.create_default_context(cafile=str(caddy.root_ca)), timeout=5) as client,
        ):
            base = caddy.base
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
            plain = httpx.get(f"http://localhost:{caddy.http_port}/v1/devices", timeout=5)
            assert plain.status_code in {301, 302, 307, 308}
            assert plain.headers["location"].startswith("https://")
    finally:
        ingest.shutdown()
        query.shutdown()
        ingest.server_close()
        query.server_close()
