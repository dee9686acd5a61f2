"""The edge's Prometheus metrics (names binding, see issue 5) in a registry of their own."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from p1_edge.uplink import VERDICT_LABELS

POLL_RESULTS = ("ok", "unreachable", "bad_response", "needs_user")


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("p1_edge_polls", "Meter polls by result", ["result"], registry=r)
        self.spool_depth = Gauge("p1_edge_spool_depth", "Readings waiting in the spool", registry=r)
        self.spool_oldest_age = Gauge(
            "p1_edge_spool_oldest_age_seconds", "Age of the oldest spooled reading", registry=r
        )
        self.spool_dropped = Counter(
            "p1_edge_spool_dropped", "Readings dropped because the spool was full", registry=r
        )
        self.quarantined = Counter(
            "p1_edge_quarantined_samples", "Readings quarantined as invalid by ingest", registry=r
        )
        self.upload_batches = Counter(
            "p1_edge_upload_batches", "Upload attempts by result", ["result"], registry=r
        )
        self.uploaded_samples = Counter(
            "p1_edge_uploaded_samples", "Readings ingest confirmed (2xx)", registry=r
        )
        self.last_upload = Gauge(
            "p1_edge_last_upload_timestamp_seconds", "When ingest last confirmed a batch", registry=r
        )
        # Pre-create label values so every series exists from the first scrape (rate() needs it).
        for result in POLL_RESULTS:
            self.polls.labels(result)
        for result in VERDICT_LABELS:
            self.upload_batches.labels(result)

    def watch_spool(self, depth: Callable[[], int], oldest_ts: Callable[[], float | None]) -> None:
        """Depth and age are read at scrape time, so they are never stale."""
        self.spool_depth.set_function(lambda: float(depth()))

        def age() -> float:
            oldest = oldest_ts()
            return 0.0 if oldest is None else max(0.0, time.time() - oldest)

        self.spool_oldest_age.set_function(age)
