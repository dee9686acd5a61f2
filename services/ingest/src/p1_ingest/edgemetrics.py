"""The edges' reports on ingest's ``/metrics``: ``p1_edge_report_*{device_id}``, read from ``devices`` at
scrape time (docs/design.md §12).

An edge behind a home router cannot be scraped; what it reports with each upload (SampleBatch ``edge``,
stored with the batch by ``store.py``) is served here instead, so the edge alerts need no way in to the
Pi. Read from the database, not kept in this worker's memory: every worker answers alike, a restart
loses nothing, and ``p1_edge_report_timestamp_seconds`` keeps its value while an edge is silent, so the
report's age grows and EdgeSilent fires.

Cardinality is bounded by the token table: only devices some ``DEVICE_TOKENS`` entry names get series,
read anew at each scrape, so a device whose token is removed (file reload) loses its series at the next
scrape, and a device id that is not in the table never makes one.
"""

import logging
from collections.abc import Sequence
from typing import Final

import asyncpg
from fastapi import FastAPI

from p1_config.redact import describe_error
from p1_ingest.metrics import IngestMetrics
from p1_servicekit.problems import DB_UNAVAILABLE
from p1_servicekit.tokens import TokenLookup

log = logging.getLogger(__name__)

_REPORTS_SQL: Final = """
SELECT device_id, extract(epoch FROM edge_reported_at)::float8 AS reported_at, edge_spool_depth,
       edge_spool_oldest_age_s, edge_quarantined, edge_spool_dropped, edge_meter_errors, edge_version,
       edge_uptime_s
  FROM devices WHERE device_id = ANY($1::text[]) AND edge_reported_at IS NOT NULL
 ORDER BY device_id"""
_FAILURES: Final[tuple[type[Exception], ...]] = (*DB_UNAVAILABLE, asyncpg.PostgresError)
_STATEMENT_TIMEOUT_S: Final = 5.0

_INFO: Final = "p1_edge_report_info"
_INFO_DOC: Final = "The edge's software version, as reported (value 1)."
# (name, kind, help, column): every series labelled device_id; a counter is exposed as name_total.
_SERIES: Final = (
    (
        "p1_edge_report_timestamp_seconds",
        "gauge",
        "Unix time ingest stored the edge's latest report.",
        "reported_at",
    ),
    (
        "p1_edge_report_spool_depth",
        "gauge",
        "Readings waiting in the edge's spool, as reported.",
        "edge_spool_depth",
    ),
    (
        "p1_edge_report_spool_oldest_age_seconds",
        "gauge",
        "Age of the oldest reading waiting in the edge's spool when it reported.",
        "edge_spool_oldest_age_s",
    ),
    (
        "p1_edge_report_quarantined_samples",
        "gauge",
        "Readings in the edge's quarantine (refused by ingest), as reported.",
        "edge_quarantined",
    ),
    (
        "p1_edge_report_spool_dropped_samples",
        "counter",
        "Readings the edge dropped because its spool was full, over the spool's life, as reported.",
        "edge_spool_dropped",
    ),
    (
        "p1_edge_report_meter_errors",
        "counter",
        "Failed meter polls since the edge started, as reported (resets with the edge's uptime).",
        "edge_meter_errors",
    ),
    (
        "p1_edge_report_uptime_seconds",
        "gauge",
        "Seconds since the edge process started, as reported.",
        "edge_uptime_s",
    ),
)


def render(rows: Sequence[asyncpg.Record]) -> bytes:
    """The rows in the Prometheus text format (0.0.4), every family present with or without rows.

    Written here rather than through prometheus_client's collector and ``generate_latest``, which check
    and escape every label of every sample: at 1,000 devices (8,000 samples) they took 24 times as long
    as this join, time the event loop of a worker spends away from uploads at each scrape. Nothing needs
    escaping: a device id and a version match the contract's patterns (letters, digits, ``.+_-``),
    checked again by the devices table (migration 0009).
    """
    lines: list[str] = []
    for name, kind, doc, column in _SERIES:
        exposed = f"{name}_total" if kind == "counter" else name
        lines += (f"# HELP {exposed} {doc}", f"# TYPE {exposed} {kind}")
        lines += (f'{exposed}{{device_id="{r["device_id"]}"}} {float(r[column])!r}' for r in rows)
    lines += (f"# HELP {_INFO} {_INFO_DOC}", f"# TYPE {_INFO} gauge")
    lines += (f'{_INFO}{{device_id="{r["device_id"]}",version="{r["edge_version"]}"}} 1.0' for r in rows)
    return ("\n".join(lines) + "\n").encode()


class EdgeReportMetrics:
    """``scrape`` is the ``metrics_extra`` of ingest's app (``p1_servicekit.metrics.ScrapeExtra``)."""

    def __init__(self, tokens: TokenLookup, metrics: IngestMetrics, acquire_timeout_s: float) -> None:
        self._tokens = tokens
        self._metrics = metrics
        self._acquire_timeout_s = acquire_timeout_s

    async def scrape(self, app: FastAPI) -> bytes:
        return render(await self._rows(app))

    async def _rows(self, app: FastAPI) -> list[asyncpg.Record]:
        """The reports of the devices in the token table now; none while the database is away (the
        scrape still answers: ingest's own series matter most then, and P1DatabaseErrors tells why)."""
        devices = sorted(self._tokens.devices())
        pool: asyncpg.Pool[asyncpg.Record] | None = getattr(app.state, "pool", None)
        if not devices or pool is None:
            return []
        try:
            async with pool.acquire(timeout=self._acquire_timeout_s) as conn:
                return await conn.fetch(_REPORTS_SQL, devices, timeout=_STATEMENT_TIMEOUT_S)
        except _FAILURES as exc:
            self._metrics.db_errors.inc()
            log.warning("edge reports not read for /metrics", extra={"error": describe_error(exc)})
            return []
