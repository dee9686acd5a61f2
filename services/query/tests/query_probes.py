"""Probes of a running query process from outside: raw sockets that never read, metrics by name."""

import re
import socket
import time
from urllib.parse import urlencode

import httpx

from p1_servicekit.testing import wait_until

# The smallest receive buffer Linux grants (it doubles the value and clamps it to ~2 KB): the client's
# window closes after a couple of kilobytes, so the server's sends block as soon as its own buffers fill.
TINY_RCVBUF = 1024


def stalled_get(port: int, path: str, params: dict[str, str], token: str) -> socket.socket:
    """A GET sent from a socket that will never read its answer; the caller closes it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, TINY_RCVBUF)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    request = (
        f"GET {path}?{urlencode(params)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    s.sendall(request.encode())
    return s


def metric(base_url: str, sample: str) -> float:
    """The value of one exposed sample, e.g. ``p1_query_exports_total{result="done"}``; 0 when absent
    (a labelled counter appears only once it was first incremented)."""
    text = httpx.get(base_url + "/metrics", timeout=10).text
    m = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def exports(base_url: str, result: str) -> float:
    return metric(base_url, f'p1_query_exports_total{{result="{result}"}}')


def exports_active(base_url: str) -> float:
    return metric(base_url, "p1_query_exports_active")


def export_pages(base_url: str) -> float:
    """Pages (and bucket chunks) read by exports so far."""
    return metric(base_url, 'p1_query_db_seconds_count{operation="export"}')


def wait_quiet(base_url: str, timeout_s: float, quiet_s: float = 1.0) -> None:
    """Until the exports read no new page for ``quiet_s``: every one in progress is blocked sending."""
    seen = {"pages": export_pages(base_url), "since": time.monotonic()}

    def quiet() -> bool:
        pages = export_pages(base_url)
        if pages != seen["pages"]:
            seen.update(pages=pages, since=time.monotonic())
        return time.monotonic() - seen["since"] >= quiet_s

    wait_until(quiet, timeout_s, "the exports to stop reading pages", step_s=0.1)
