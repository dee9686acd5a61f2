"""docs/deploy.md's "Check it end to end", as written: each of its curl lines runs through the project's
Caddy site block (TLS from Caddy's internal CA, which curl trusts through CURL_CA_BUNDLE as it would trust
Let's Encrypt) to a running ingest and query, and prints exactly what its `# →` comment says."""

import re
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from p1_servicekit.testing import ServiceProcess, console_script, free_port

HINT = "apt-get install caddy"
DEVICE = "meter-1"  # the device id the documented commands use
DEVICE_TOKEN, READ_TOKEN = "doc-device-token-7d1e", "doc-read-token-90ab"
SECTION = "### Check it end to end"


def checks_in(text: str) -> list[tuple[str, str]]:
    """(curl command, what it prints) for each line of the section's shell block in deploy.md's ``text``."""
    section = text.split(SECTION, 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, f"{SECTION}: no ```sh block"
    lines = block.group(1).splitlines()
    assert re.match(r"P1=https://\S+ +DEVICE_TOKEN=\S+ +READ_TOKEN=", lines[0]), lines[0]
    checks = []
    for line in lines[1:]:
        command, _, expected = line.partition("# → ")
        assert re.match(r"curl .*# → ", line), f"not a check with its answer: {line}"
        checks.append((command.strip(), expected.strip()))
    return checks


def documented_checks(root: Path) -> list[tuple[str, str]]:
    return checks_in((root / "docs/deploy.md").read_text())


def test_the_documented_checks_answer_as_documented(
    root: Path,
    tmp_path: Path,
    tool: Callable[[str, str], str],
    which: Callable[[str], str | None],
    caddy_site: Callable[..., Any],
    database_url: str,
) -> None:
    caddy = tool("caddy", HINT)
    assert which("curl"), "curl runs the documented commands"
    checks = documented_checks(root)
    paths = {re.search(r'\$P1(/[^"\s]*)', c).group(1) for c, _ in checks}  # type: ignore[union-attr]
    assert {
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/samples",
        "/v1/devices",
        f"/v1/devices/{DEVICE}/realtime",
    } <= paths
    services = [
        ServiceProcess(
            [console_script(f"p1-{name}"), "serve", "--port", str(port := free_port())],
            {"DATABASE_URL": database_url, tokens: table, "LOG_LEVEL": "WARNING"},
            port,
        ).start(60)
        for name, tokens, table in (
            ("ingest", "DEVICE_TOKENS", f"{DEVICE_TOKEN}:{DEVICE}"),
            ("query", "READ_TOKENS", f"{READ_TOKEN}:{DEVICE}"),
        )
    ]
    try:
        # the edge's part: one reading of the device, so that query lists it
        reading = {
            "ts": datetime.now(UTC).isoformat(timespec="seconds"),
            "power_w": 420.0,
            "import_kwh": 1.5,
            "export_kwh": 0.0,
        }
        r = httpx.post(
            f"{services[0].base_url}/v1/samples",
            json={"device_id": DEVICE, "samples": [reading]},
            headers={"Authorization": f"Bearer {DEVICE_TOKEN}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        upstreams = [f"127.0.0.1:{s.port}" for s in services]
        with caddy_site(caddy, tmp_path, *upstreams) as site:
            env = {
                "PATH": "/usr/bin:/bin",
                "P1": site.base,
                "DEVICE_TOKEN": DEVICE_TOKEN,
                "READ_TOKEN": READ_TOKEN,
                "CURL_CA_BUNDLE": str(site.root_ca),
            }
            for command, expected in checks:
                done = subprocess.run(
                    ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=30
                )
                out = done.stdout.strip()
                assert done.returncode == 0, f"{command}: {done.stderr}"
                if expected.endswith("…"):
                    assert out.startswith(expected[:-1]), (
                        f"{command}\n  printed {out[:200]}\n  documented {expected}"
                    )
                else:
                    assert out == expected, f"{command}\n  printed {out[:200]}\n  documented {expected}"
    finally:
        for s in services:
            s.stop()


def test_the_check_parser_reads_every_line(root: Path) -> None:
    """Negative control: a documented line without its answer is not silently skipped."""
    text = (root / "docs/deploy.md").read_text()
    assert len(documented_checks(root)) >= 8
    with pytest.raises(AssertionError, match="not a check with its answer"):
        checks_in(text.replace("# → 404", "# 404", 1))
