"""``p1-edge pair``: obtain a v2 token (``POST /api/user``) while the user presses the button."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx

from p1_edge.meter.client import base_url, tls_context
from p1_edge.meter.errors import MeterBadResponse, MeterUnreachable


async def pair(
    host: str,
    name: str,
    *,
    wait_s: float,
    ca_file: str | None,
    insecure: bool,
    say: Callable[[str], None],
    interval_s: float = 1.0,
) -> str:
    """Polls until the device hands out a token or ``wait_s`` has passed (then TimeoutError).

    Until its button is pressed the device answers 403 ``user:creation-not-enabled``; we count down
    so the user knows how long is left. The certificate is checked against the CA only: the
    hostname rule needs the serial, which pairing does not need to know.
    """
    deadline = time.monotonic() + wait_s
    body = {"name": f"local/{name}"}
    async with httpx.AsyncClient(
        base_url=base_url(host, "v2"),
        verify=tls_context(ca_file, insecure, check_hostname=False),
        timeout=httpx.Timeout(4.0),
        headers={"X-Api-Version": "2"},
        trust_env=False,
    ) as http:
        while (left := deadline - time.monotonic()) > 0:
            try:
                response = await http.post("/api/user", json=body)
            except httpx.TransportError as exc:
                raise MeterUnreachable(f"{host}: {exc!r}") from exc
            if response.status_code == 200:
                try:
                    token = json.loads(response.content)["token"]
                except (ValueError, KeyError, TypeError) as exc:
                    raise MeterBadResponse("POST /api/user: no token in the answer") from exc
                if not isinstance(token, str) or not token:
                    raise MeterBadResponse("POST /api/user: empty token")
                return token
            if response.status_code != 403:
                raise MeterBadResponse(f"POST /api/user: HTTP {response.status_code}")
            say(f"Press the button on the P1 meter now ({int(left)} s left)…")
            await asyncio.sleep(min(interval_s, max(left, 0.0)))
    raise TimeoutError(f"the button was not pressed within {wait_s:.0f} s")
