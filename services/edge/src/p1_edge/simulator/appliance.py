"""The P1 dongle itself (not the smart meter behind it): its settings, Wi-Fi, uptime and v2 users.

v2 users follow HomeWizard's authorization rules: ``POST /api/user`` with ``{"name": "local/<name>"}``
creates a user once the button was pressed (30 s window), a name used again gets a new token and the old
one stops working, and the tokens are 32 hex digits. The token given to the simulator (``--token``) is
already valid when it starts, as if the edge had paired before, and is the one the first pairing hands
out, so a test can pair and then use the token it configured.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Final

PAIRING_WINDOW_S = 30.0
USER_NAME = re.compile(r"local/[a-zA-Z0-9\-_/\\# ]{1,40}")  # HomeWizard's documented rule
PRESET_USER: Final = "local/p1-edge"


@dataclass
class Users:
    preset_token: str
    tokens: dict[str, str] = field(default_factory=dict)  # name → token
    _preset_given: bool = False

    def __post_init__(self) -> None:
        self.tokens[PRESET_USER] = self.preset_token

    def authorised(self, token: str) -> str | None:
        """The user a token belongs to, compared in constant time."""
        found = None
        for name, known in self.tokens.items():
            if secrets.compare_digest(known.encode(), token.encode()):
                found = name
        return found

    def create(self, name: str) -> str:
        if not self._preset_given and name not in self.tokens:
            token, self._preset_given = self.preset_token, True
            self.tokens.pop(PRESET_USER, None)
        else:
            token = secrets.token_hex(16).upper()
        self.tokens[name] = token
        return token

    def delete(self, name: str) -> bool:
        return self.tokens.pop(name, None) is not None


def name_error(name: object) -> str | None:
    """HomeWizard's error code for a user name it refuses, or None."""
    if not isinstance(name, str) or not name:
        return "user:name-empty"
    if not name.startswith("local/"):
        return "user:invalid-prefix"
    if len(name) > len("local/") + 40:
        return "user:name-too-long"
    return None if USER_NAME.fullmatch(name) else "user:name-invalid"


@dataclass
class Appliance:
    serial: str
    users: Users
    booted_at: int  # the meter clock's second at power-on (a reboot resets it)
    wifi_ssid: str = "Simulated"
    cloud_enabled: bool = True
    status_led_brightness_pct: int = 100
    api_v1_enabled: bool = True
    identified: int = 0  # how often the LED was asked to blink
    pairing_until: float = 0.0  # monotonic time until which the button's press counts

    @staticmethod
    def wifi_rssi_db(second: int) -> int:
        """A signal that wanders slowly between −66 and −54 dB."""
        return -60 + round(6 * math.sin(second / 300))

    def uptime_s(self, second: int) -> int:
        return max(second - self.booted_at, 0)

    def system_v1(self) -> dict[str, object]:
        return {"cloud_enabled": self.cloud_enabled}

    def system_v2(self, second: int) -> dict[str, object]:
        return {
            "wifi_ssid": self.wifi_ssid,
            "wifi_rssi_db": self.wifi_rssi_db(second),
            "cloud_enabled": self.cloud_enabled,
            "uptime_s": self.uptime_s(second),
            "status_led_brightness_pct": self.status_led_brightness_pct,
            "api_v1_enabled": self.api_v1_enabled,
        }
