-- p1-telemetry schema, version 1. Table and column names are binding (docs/design.md §4):
-- dashboards and users' own SQL read them.

-- One row per device; the last_* columns describe the newest stored reading and are what a new
-- batch is compared with to detect a counter reset. Upserted by ingest under a row lock, so the
-- batches of one device are serialised while different devices proceed in parallel.
CREATE TABLE devices (
    device_id              text PRIMARY KEY,
    first_seen             timestamptz NOT NULL,  -- the oldest reading's time
    last_seen              timestamptz NOT NULL,  -- the newest reading's time
    meter_serial           text,
    meter_model            text,
    meter_protocol_version int,
    current_epoch          int NOT NULL DEFAULT 0,
    last_ts                timestamptz,
    last_import_kwh        float8,
    last_export_kwh        float8,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- A counter epoch: readings between two meter replacements / counter resets. Energy is never
-- computed across two epochs. Epoch 0 starts with the device's first reading.
CREATE TABLE counter_epochs (
    device_id    text NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    epoch        int NOT NULL,
    started_at   timestamptz NOT NULL,
    reason       text NOT NULL CHECK (reason IN ('first', 'meter_replaced', 'counter_reset')),
    meter_serial text,
    PRIMARY KEY (device_id, epoch)
);

-- Raw readings. The columns are named as the Sample fields of openapi.yaml. On TimescaleDB a
-- hypertable (compression here, the retention policy from `p1-ingest maintain`, which knows
-- RAW_RETENTION_DAYS); on plain PostgreSQL monthly range partitions created ahead by
-- `p1-ingest maintain`, with a DEFAULT partition that catches readings of months that have no
-- partition yet (a backlog from long ago, a clock far off) so that ingest never fails for it;
-- `maintain` moves such rows into their month's partition when it creates it.
DO $migration$
DECLARE
    columns CONSTANT text := $cols$
        device_id       text NOT NULL,
        ts              timestamptz NOT NULL,
        epoch           int NOT NULL DEFAULT 0,
        power_w         float8 NOT NULL,
        import_kwh      float8 NOT NULL,
        export_kwh      float8 NOT NULL,
        import_t1_kwh   float8,
        import_t2_kwh   float8,
        import_t3_kwh   float8,
        import_t4_kwh   float8,
        export_t1_kwh   float8,
        export_t2_kwh   float8,
        export_t3_kwh   float8,
        export_t4_kwh   float8,
        tariff          smallint,
        power_l1_w      float8,
        power_l2_w      float8,
        power_l3_w      float8,
        voltage_l1_v    float8,
        voltage_l2_v    float8,
        voltage_l3_v    float8,
        current_l1_a    float8,
        current_l2_a    float8,
        current_l3_a    float8,
        avg_power_15m_w float8,
        month_peak_w    float8,
        month_peak_ts   timestamptz,
        gas_m3          float8,
        gas_ts          timestamptz,
        water_m3        float8,
        water_ts        timestamptz,
        PRIMARY KEY (device_id, ts)
    $cols$;
BEGIN
    -- TimescaleDB only when its library is preloaded: CREATE EXTENSION fails otherwise.
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND coalesce(current_setting('shared_preload_libraries', true), '') LIKE '%timescaledb%' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXECUTE 'CREATE TABLE samples (' || columns || ')';
        PERFORM create_hypertable('samples', 'ts', chunk_time_interval => INTERVAL '7 days');
        -- Segment by device so that a device's series decompresses alone; late inserts into
        -- compressed chunks (ON CONFLICT DO NOTHING) are supported by TimescaleDB >= 2.11.
        ALTER TABLE samples SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'device_id',
            timescaledb.compress_orderby = 'ts'
        );
        PERFORM add_compression_policy('samples', INTERVAL '14 days');
    ELSE
        EXECUTE 'CREATE TABLE samples (' || columns || ') PARTITION BY RANGE (ts)';
        CREATE TABLE samples_default PARTITION OF samples DEFAULT;
    END IF;
END
$migration$;

-- Creates the monthly partition (UTC months) of `samples` holding month_start, moving any rows
-- that the DEFAULT partition holds for that month into it; returns false when it exists already.
-- Plain PostgreSQL only; called by `p1-ingest maintain` and at the end of this migration.
CREATE FUNCTION p1_ensure_samples_partition(month_start date) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    lo   CONSTANT timestamptz := make_timestamptz(
        extract(year FROM month_start)::int, extract(month FROM month_start)::int, 1, 0, 0, 0, 'UTC');
    hi   CONSTANT timestamptz := (lo AT TIME ZONE 'UTC' + INTERVAL '1 month') AT TIME ZONE 'UTC';
    name CONSTANT text := format('samples_%s', to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM'));
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE samples INCLUDING DEFAULTS)', name);
    -- The CHECK lets ATTACH skip its validation scan of the new table.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (ts >= %L AND ts < %L)',
                   name, name || '_range', lo, hi);
    EXECUTE format(
        'WITH moved AS (DELETE FROM samples_default WHERE ts >= %L AND ts < %L RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved', lo, hi, name);
    EXECUTE format('ALTER TABLE samples ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', name, name || '_range');
    RETURN true;
END
$fn$;

DO $partitions$
BEGIN
    IF to_regclass('samples_default') IS NOT NULL THEN
        PERFORM p1_ensure_samples_partition((date_trunc('month', now() AT TIME ZONE 'UTC')
                                             + make_interval(months => m))::date)
        FROM generate_series(0, 2) AS m;
    END IF;
END
$partitions$;

-- Rollups per device, UTC-aligned bucket and counter epoch, maintained by ingest in the statement
-- that inserts the raw rows, from the rows actually inserted only: retries, replays and late data
-- never double-count. Counters only grow within an epoch, so C_min is the value at first_ts and
-- C_max the value at last_ts; merging is LEAST/GREATEST. avg_power_15m_w and month_peak_w are the
-- values of the reading at last_ts.
CREATE TABLE rollup_15m (
    device_id        text NOT NULL,
    bucket           timestamptz NOT NULL,
    epoch            int NOT NULL,
    n                int NOT NULL,
    power_sum        float8 NOT NULL,
    power_min        float8 NOT NULL,
    power_max        float8 NOT NULL,
    power_import_sum float8 NOT NULL,  -- sum of max(power_w, 0): the "mean of positive power" fallback
    first_ts         timestamptz NOT NULL,
    last_ts          timestamptz NOT NULL,
    import_kwh_min   float8,
    import_kwh_max   float8,
    export_kwh_min   float8,
    export_kwh_max   float8,
    gas_m3_min       float8,
    gas_m3_max       float8,
    water_m3_min     float8,
    water_m3_max     float8,
    avg_power_15m_w  float8,
    month_peak_w     float8,
    PRIMARY KEY (device_id, bucket, epoch)
);

CREATE TABLE rollup_1h (LIKE rollup_15m INCLUDING ALL);
