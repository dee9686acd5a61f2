"""Uploads through Caddy with ``tls internal``: the edge trusts Caddy's own root via CA_BUNDLE.

Caddy is installed by CI (deploy/ci-install.sh, which sets P1_DEPLOY_REQUIRE_TOOLS=1). Locally, a
missing caddy skips this test with the hint; with P1_DEPLOY_REQUIRE_TOOLS set it fails instead.
"""

import os
import shutil
import ssl
from pathlib import Path

import httpx
import pytest
from e2e_kit import Stack, StackFactory, check_exactly_once

from p1_servicekit.testing import ServiceProcess, free_port, wait_until


def caddy_binary() -> str:
    exe = shutil.which("caddy")
    if exe is None:
        if os.environ.get("P1_DEPLOY_REQUIRE_TOOLS"):
            pytest.fail("caddy is required (P1_DEPLOY_REQUIRE_TOOLS is set): apt-get install caddy")
        pytest.skip("caddy not installed (apt-get install caddy)")
    return exe


class Caddy:
    def __init__(self, exe: str, workdir: Path, upstream_port: int) -> None:
        self.workdir = workdir
        self.https_port, http_port, admin_port = free_port(), free_port(), free_port()
        self.access_log = workdir / "caddy-access.log"
        config = workdir / "Caddyfile"
        config.write_text(
            "{\n"
            f"\tadmin 127.0.0.1:{admin_port}\n"
            "\tdefault_bind 127.0.0.1\n"
            "\tskip_install_trust\n"
            f"\thttp_port {http_port}\n"
            f"\thttps_port {self.https_port}\n"
            "}\n\n"
            f"https://localhost:{self.https_port} {{\n"
            "\tbind 127.0.0.1\n"
            "\ttls internal\n"
            f"\treverse_proxy 127.0.0.1:{upstream_port}\n"
            f"\tlog {{\n\t\toutput file {self.access_log}\n\t}}\n"
            "}\n"
        )
        data = workdir / "caddy-data"
        self.root = data / "caddy/pki/authorities/local/root.crt"
        env = {
            "XDG_DATA_HOME": str(data),
            "XDG_CONFIG_HOME": str(workdir / "caddy-config"),
            "HOME": str(workdir),
        }
        self.proc = ServiceProcess(
            [exe, "run", "--config", str(config), "--adapter", "caddyfile"],
            env,
            self.https_port,
            ready_path=None,
            log_path=workdir / "caddy.log",
        )

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    def start(self) -> "Caddy":
        self.proc.start()
        wait_until(self.root.exists, 30, f"Caddy's internal root\n{self.proc.logs()}")
        return self

    def answers(self, path: str) -> int:
        try:
            context = ssl.create_default_context(cafile=str(self.root))
            return httpx.get(self.url + path, verify=context, timeout=5).status_code
        except (httpx.HTTPError, ssl.SSLError):
            return 0


@pytest.fixture
def caddy_exe() -> str:
    return caddy_binary()


@pytest.mark.timeout(120)
def test_uploads_through_caddy_tls_internal(
    caddy_exe: str, database_url: str, redis_url: str, tmp_path: Path, make_stack: StackFactory
) -> None:
    stack: Stack = make_stack(database_url, redis_url=redis_url)
    caddy = Caddy(caddy_exe, tmp_path, stack.ingest_port).start()
    try:
        stack.ingest_url = caddy.url
        stack.ca_bundle = caddy.root
        stack.start()
        assert stack.sim is not None
        # TLS from Caddy's own CA, proxied to ingest (its /readyz answers through Caddy)
        wait_until(lambda: caddy.answers("/readyz") == 200, 30, "ingest through Caddy")
        stack.wait_streaming(6)
        stack.quiesce_meter()
        stack.drain()
        assert stack.terminate_edge() == 0
        assert check_exactly_once(stack.sim.served(), stack.export()) >= 6
        edge_log = (stack.workdir / "edge.log").read_text()
        assert "CERTIFICATE_VERIFY_FAILED" not in edge_log
        wait_until(lambda: "/v1/samples" in caddy.access_log.read_text(), 10, "uploads in Caddy's log")
    finally:
        caddy.proc.stop()
