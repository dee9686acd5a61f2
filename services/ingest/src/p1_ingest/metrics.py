"""The ingest metrics (names binding, docs/design.md §12). No device id on a histogram; the one per-device
series is the last-sample gauge, bounded by the number of devices in DEVICE_TOKENS."""

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from p1_ingest.reasons import REASONS

BATCH_BUCKETS: Final = (1, 10, 60, 100, 300, 600, 1000, 2000, 3600, 5000)
DB_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.samples = Counter(
            "p1_ingest_samples",
            "Readings of valid batches: accepted (stored now) or duplicate (stored before, or repeated).",
            ["result"],
            registry=registry,
        )
        self.accepted = self.samples.labels("accepted")
        self.duplicate = self.samples.labels("duplicate")
        self.rejected = Counter(
            "p1_ingest_samples_rejected",
            "Readings of refused batches, by reason; a batch refused before its body was read counts 0.",
            ["reason"],
            registry=registry,
        )
        self.batches_rejected = Counter(
            "p1_ingest_batches_rejected",
            "Refused batches (requests), by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in REASONS:  # present from the start, so rate() works before the first refusal
            self.rejected.labels(reason)
            self.batches_rejected.labels(reason)
        self.batch_size = Histogram(
            "p1_ingest_batch_size",
            "Readings per valid batch.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.db_write = Histogram(
            "p1_ingest_db_write_seconds",
            "Time to store one batch (lock, insert, rollups, commit).",
            buckets=DB_BUCKETS,
            registry=registry,
        )
        self.db_errors = Counter(
            "p1_db_errors",
            "Database calls that failed (unreachable, timed out, or refused).",
            ["service"],
            registry=registry,
        ).labels(service)
        self.last_sample = Gauge(
            "p1_device_last_sample_timestamp_seconds",
            "Unix time of the newest stored reading of the device.",
            ["device_id"],
            registry=registry,
            multiprocess_mode="max",  # with several workers: the newest any of them stored
        )
        self.fast_path = Counter(
            "p1_ingest_fast_parse",
            "Batches parsed by the fast path (true) or handed to the contract model (false).",
            ["fast"],
            registry=registry,
        )
        self._last: dict[str, float] = {}

    def reject(self, reason: str, readings: int = 0) -> None:
        self.batches_rejected.labels(reason).inc()
        if readings:
            self.rejected.labels(reason).inc(readings)

    def saw_device(self, device_id: str, newest_unix: float) -> None:
        # max, not last: a late batch must not move the gauge back.
        if newest_unix > self._last.get(device_id, float("-inf")):
            self._last[device_id] = newest_unix
            self.last_sample.labels(device_id).set(newest_unix)
