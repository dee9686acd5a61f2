"""deploy/caddy/Caddyfile: `caddy validate`, and the routes it adapts to."""

import json
import os
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

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
