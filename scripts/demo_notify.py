"""`make demo`'s notifications: `p1-notify run` following the demo's device, and a JSON webhook on
127.0.0.1 (Apprise's ``json://``) that prints each warning and result in the demo's terminal."""

from __future__ import annotations

import json
from pathlib import Path

from p1_servicekit.testing import Webhook

# The live meter's profile: the family's household and a 6 kW heater from minute 2 to 12 of every
# quarter, so a peak warning comes within minutes of the start (p1_edge.simulator.profiles).
LIVE_PROFILE = "family-peak"
# The demo's cap: the warning is about going over 3 kW (the year's history has higher monthly peaks).
CAP_KW = 3.0


def start_webhook() -> Webhook:
    """A receiver that prints every message it gets on a line of its own (its port: ``.port``)."""

    def show(_path: str, raw: bytes) -> None:
        try:
            body = json.loads(raw)
            text = f"{body.get('title', '')}: {body.get('message', '')}"
        except ValueError:
            text = raw.decode("utf-8", "replace")
        print(f"\n>>> notification  {text}", flush=True)

    return Webhook(show, max_bytes=65536)


def write_config(path: Path, device: str, hook_port: int) -> Path:
    path.write_text(
        f"devices:\n  {device}:\n    urls: ['json://127.0.0.1:{hook_port}/demo']\n    cap_kw: {CAP_KW}\n"
    )
    return path
