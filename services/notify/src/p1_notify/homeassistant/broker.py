"""The broker address, from the config's ``mqtt.url``: ``mqtt://[user[:password]@]host[:port]`` (1883) or
``mqtts://…`` (TLS with the system's trust store, 8883). The password is kept out of every text the
address gives (``repr``, ``describe``, errors): it goes to the client only."""

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """The address for logs: ``mqtt://user@host:1883``, never the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_url(url: str) -> Broker:
    """The broker of an ``mqtt://`` or ``mqtts://`` URL; ValueError naming what is wrong (never quoting the
    URL, which may hold a password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("mqtt.url is not a URL with a valid port (mqtt://host:1883)") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError("mqtt.url must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError("mqtt.url has no host (mqtt://host:1883)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("mqtt.url takes no path, query or fragment (mqtt://host:1883)")
    if parts.password is not None and not parts.username:
        raise ValueError("mqtt.url has a password without a user name")
    return Broker(
        host=parts.hostname,
        port=port if port is not None else DEFAULT_PORTS[parts.scheme],
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )
