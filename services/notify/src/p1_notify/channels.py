"""A channel: one Apprise URL of the config, made into Apprise's notifier once, with the form of it that
may be shown (secrets masked by Apprise's own URL privacy) and the kind a metric may carry."""

import logging
import re
from dataclasses import dataclass
from functools import cache
from typing import Final

from apprise import Apprise, AppriseAsset
from apprise.plugins.base import NotifyBase

_SCHEME: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")
# Apprise logs a failed delivery with parts of the target; our own log line says it, masked.
logging.getLogger("apprise").setLevel(logging.CRITICAL)


@dataclass(frozen=True, slots=True)
class Channel:
    plugin: NotifyBase
    # what logs, the notifications table and answers show: Apprise's privacy form (passwords, tokens
    # and keys replaced) — never the URL as configured
    shown: str
    # the URL's scheme (json, ntfy, tgram, …): one of Apprise's, so a bounded metric label
    kind: str


def _asset() -> AppriseAsset:
    return AppriseAsset(app_id="p1-telemetry", app_desc="p1-telemetry peak guard", secure_logging=True)


@cache
def channel(url: str) -> Channel | None:
    """The channel of an Apprise URL, or None when Apprise does not take it (unknown scheme, missing
    parts). Cached: a config reload keeps the channels it already had."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return None
    plugin = Apprise.instantiate(url, asset=_asset())
    if plugin is None:
        return None
    # Without Apprise's options (the query part): they say how it sends, not where.
    shown = str(plugin.url(privacy=True)).split("?", 1)[0]  # type: ignore[no-untyped-call]
    return Channel(plugin, shown, scheme.group(1).lower())
