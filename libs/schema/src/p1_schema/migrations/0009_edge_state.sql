-- The edge's own state, as it reports it with each upload (SampleBatch `edge`, openapi.yaml): the
-- server watches edges it cannot reach (a Pi behind a home router). One row per device, the latest
-- report, written by ingest in the transaction that stores the batch carrying it; query shows it in
-- /v1/devices and ingest on /metrics (p1_edge_report_*). NULL until the device's edge sent a report.
-- The checks restate the contract's bounds: nothing outside them is ever stored.
ALTER TABLE devices
    ADD COLUMN edge_reported_at        timestamptz,
    ADD COLUMN edge_spool_depth        bigint CONSTRAINT devices_edge_spool_depth CHECK (edge_spool_depth BETWEEN 0 AND 1000000000),
    ADD COLUMN edge_spool_oldest_age_s float8 CONSTRAINT devices_edge_spool_oldest_age CHECK (edge_spool_oldest_age_s BETWEEN 0 AND 3200000000),
    ADD COLUMN edge_quarantined        bigint CONSTRAINT devices_edge_quarantined CHECK (edge_quarantined BETWEEN 0 AND 1000000000),
    ADD COLUMN edge_spool_dropped      bigint CONSTRAINT devices_edge_spool_dropped CHECK (edge_spool_dropped BETWEEN 0 AND 1000000000000),
    ADD COLUMN edge_meter_errors       bigint CONSTRAINT devices_edge_meter_errors CHECK (edge_meter_errors BETWEEN 0 AND 1000000000000),
    ADD COLUMN edge_version            text CONSTRAINT devices_edge_version CHECK (edge_version ~ '^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$'),
    ADD COLUMN edge_uptime_s           float8 CONSTRAINT devices_edge_uptime CHECK (edge_uptime_s BETWEEN 0 AND 3200000000),
    -- a report is whole or absent
    ADD CONSTRAINT devices_edge_whole CHECK (
        (edge_reported_at IS NULL) = (edge_spool_depth IS NULL) AND (edge_reported_at IS NULL) = (edge_spool_oldest_age_s IS NULL)
        AND (edge_reported_at IS NULL) = (edge_quarantined IS NULL) AND (edge_reported_at IS NULL) = (edge_spool_dropped IS NULL)
        AND (edge_reported_at IS NULL) = (edge_meter_errors IS NULL) AND (edge_reported_at IS NULL) = (edge_version IS NULL)
        AND (edge_reported_at IS NULL) = (edge_uptime_s IS NULL));

-- No new writer version (the guard of 0004/0005 stays): readings and rollups are written as before, and
-- the report is a separate statement of ingest's transaction, run only for a batch that carries one. An
-- older ingest during a rolling upgrade stores every reading right and only leaves the report stale
-- until the new ingest takes over (the next upload mends it); and ingest's rebuild, which runs the
-- write path inside older migrations (0005), never touches these columns.
