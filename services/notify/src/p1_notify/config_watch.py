"""The config file, re-read when it changes (polled: an editor's rename, an in-place write and a
Kubernetes ConfigMap's symlink swap all change what ``stat`` says). A file that cannot be read or parsed
keeps the last good config, and the error (naming the line) is logged and counted."""

import asyncio
import logging
import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from p1_notify.config import ConfigFileError, NotifyConfig, load_config

log = logging.getLogger(__name__)


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)  # follows symlinks: a swapped ..data link shows as a new inode
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_ctime_ns)


class ConfigWatch:
    def __init__(self, path: Path, poll_s: float, registry: CollectorRegistry) -> None:
        """Reads the file once; a bad file at start-up raises ``ConfigFileError`` (no start without it)."""
        self._path = path
        self._poll_s = poll_s
        self._stamp = _stamp(path)
        self.current: NotifyConfig = load_config(path)
        self._reloads = Counter(
            "p1_notify_config_reloads",
            "Changes of the config file, taken (ok) or refused (error: the old config stays).",
            ["result"],
            registry=registry,
        )

    def get(self) -> NotifyConfig:
        return self.current

    def check(self) -> bool:
        """Re-reads the file if it changed; True when a new config was taken."""
        stamp = _stamp(self._path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.current = load_config(self._path)
        except ConfigFileError as exc:
            self._reloads.labels("error").inc()
            log.error("config file refused; keeping the previous one", extra={"error": str(exc)})
            return False
        self._reloads.labels("ok").inc()
        log.info("config file reloaded", extra={"devices": len(self.current.devices)})
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            self.check()
