"""The edge's report of itself, sent with each upload (SampleBatch ``edge``, openapi.yaml ``EdgeState``).

A Pi behind a home router cannot be scraped; ingest keeps the latest report per device and serves it on
its own ``/metrics`` (``p1_edge_report_*``) and in query's ``/v1/devices``, so the edge alerts work with
no way in to the Pi. The Pi's ``/metrics`` stays for the LAN.

The report is made when a batch is read from the spool (in the worker thread, beside the gzip), so the
depth counts the batch itself; a batch read ahead while the previous one is on the wire carries a
report one batch old, which is as fresh as the upload interval anyway.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import time
from typing import Final

from p1_edge.spool import Spool

# openapi.yaml EdgeState.version; anything else a build might call itself is sent made to fit.
_VERSION_OK: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")
_AGE_MAX_S: Final = 3_200_000_000.0


def edge_version() -> str:
    """This edge's version as the contract takes it (``unknown`` when the package has no metadata)."""
    try:
        raw = importlib.metadata.version("p1-edge")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
    fitted = re.sub(r"[^0-9A-Za-z.+_-]", "-", raw).lstrip(".+_-")[:64]
    return fitted if _VERSION_OK.fullmatch(fitted) else "unknown"


class EdgeReport:
    """Counts what the edge reports (meter errors since start) and renders the report as JSON."""

    def __init__(self, spool: Spool, version: str | None = None) -> None:
        self._spool = spool
        self._started = time.monotonic()
        self._version = version or edge_version()
        self.meter_errors = 0  # failed meter polls since the start (the poller counts them)

    def meter_failed(self) -> None:
        self.meter_errors += 1

    def json(self) -> bytes:
        """The report now, as the JSON of an EdgeState (blocking: reads the spool; run in a thread)."""
        depth, oldest_ts, quarantined, dropped = self._spool.report_counts()
        now = time.time()
        age = 0.0 if oldest_ts is None else min(max(0.0, now - oldest_ts), _AGE_MAX_S)
        return json.dumps(
            {
                "spool_depth": depth,
                "spool_oldest_age_s": round(age, 3),
                "quarantined": quarantined,
                "spool_dropped": dropped,
                "meter_errors": self.meter_errors,
                "version": self._version,
                "uptime_s": round(min(time.monotonic() - self._started, _AGE_MAX_S), 3),
            },
            separators=(",", ":"),
        ).encode()
