-- 0007: gas and water as readings of their own meters (issue 13 §2) and the tariff registers in the
-- rollups (issue 13 §5). docs/design.md §4 and §6 say why; valid on plain PostgreSQL and on TimescaleDB.

-- Only an ingest that writes the gas and water readings and the registers' rollup columns may write from
-- now on (0004's guard, next version); this migration's own updates of devices announce it.
CREATE OR REPLACE FUNCTION p1_ingest_writer_required() RETURNS text LANGUAGE sql STABLE AS $$ SELECT '7' $$;
SELECT set_config('p1.ingest_writer', '7', true);

-- A gas or water meter's readings, one row per reading of that meter, identified by the meter's own time
-- (`gas_ts`, `water_ts`): a DSMR 4 gas value repeated in every telegram of its hour is one row. Derived
-- from `samples` by ingest (which keeps every raw value), kept forever like the rollups (a few hundred
-- rows a day at most). epoch: the meter's own counter epoch (a gas meter replacement is not an
-- electricity one); flag as samples.flag: NULL good, 'suspect', 'glitch' (counted nowhere).
CREATE TABLE meter_volumes (
    device_id text NOT NULL,
    meter     text NOT NULL CONSTRAINT meter_volumes_meter_known CHECK (meter IN ('gas', 'water')),
    ts        timestamptz NOT NULL CONSTRAINT meter_volumes_ts_in_range
                  CHECK (ts >= TIMESTAMPTZ '2000-01-01 00:00:00+00' AND ts < TIMESTAMPTZ '2100-01-01 00:00:00+00'),
    value     float8 NOT NULL,
    epoch     int NOT NULL,
    flag      text CONSTRAINT meter_volumes_flag_known CHECK (flag IN ('suspect', 'glitch')),
    PRIMARY KEY (device_id, meter, ts)
);

-- The integrity state of each meter's current epoch, as devices.good_* holds it for electricity:
-- the newest good reading, m = min(value − r·t) over the epoch's good readings, the pending suspects.
CREATE TABLE meter_volume_state (
    device_id  text NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    meter      text NOT NULL,
    epoch      int NOT NULL,
    good_ts    timestamptz,
    good_value float8,
    good_m     float8,
    run_start  timestamptz,
    run_n      int NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, meter)
);

-- Rollups of the good readings of meter_volumes per meter, bucket of the meter's own time and epoch:
-- the first and last reading (a counter only grows within an epoch: value_min is the value at first_ts,
-- value_max at last_ts). rollup_volume_1d: local days of the zone in rollup_1d_zone, as rollup_1d.
CREATE TABLE rollup_volume_15m (
    device_id text NOT NULL,
    meter     text NOT NULL,
    bucket    timestamptz NOT NULL,
    epoch     int NOT NULL,
    n         int NOT NULL,
    first_ts  timestamptz NOT NULL,
    last_ts   timestamptz NOT NULL,
    value_min float8 NOT NULL,
    value_max float8 NOT NULL,
    PRIMARY KEY (device_id, meter, bucket, epoch)
);
CREATE TABLE rollup_volume_1h (LIKE rollup_volume_15m INCLUDING ALL);
CREATE TABLE rollup_volume_1d (LIKE rollup_volume_15m INCLUDING ALL);

-- Tariff registers 1 and 2 (day/night) in the electricity rollups, with the totals' semantics: the value
-- at the bucket's first and last good reading of the epoch.
ALTER TABLE rollup_15m
    ADD COLUMN import_t1_kwh_min float8, ADD COLUMN import_t1_kwh_max float8,
    ADD COLUMN import_t2_kwh_min float8, ADD COLUMN import_t2_kwh_max float8,
    ADD COLUMN export_t1_kwh_min float8, ADD COLUMN export_t1_kwh_max float8,
    ADD COLUMN export_t2_kwh_min float8, ADD COLUMN export_t2_kwh_max float8;
ALTER TABLE rollup_1h
    ADD COLUMN import_t1_kwh_min float8, ADD COLUMN import_t1_kwh_max float8,
    ADD COLUMN import_t2_kwh_min float8, ADD COLUMN import_t2_kwh_max float8,
    ADD COLUMN export_t1_kwh_min float8, ADD COLUMN export_t1_kwh_max float8,
    ADD COLUMN export_t2_kwh_min float8, ADD COLUMN export_t2_kwh_max float8;
ALTER TABLE rollup_1d
    ADD COLUMN import_t1_kwh_min float8, ADD COLUMN import_t1_kwh_max float8,
    ADD COLUMN import_t2_kwh_min float8, ADD COLUMN import_t2_kwh_max float8,
    ADD COLUMN export_t1_kwh_min float8, ADD COLUMN export_t1_kwh_max float8,
    ADD COLUMN export_t2_kwh_min float8, ADD COLUMN export_t2_kwh_max float8;

-- Existing data: every device with raw readings is rebuilt from them by ingest's own rules in this
-- migration's transaction (p1_ingest.rebuild), which makes its gas and water readings, their epochs and
-- rollups, and the registers' columns. Rollups older than the raw readings (raw retention) keep NULL
-- registers: their day/night answers are null, their totals unchanged.
INSERT INTO device_rebuilds (device_id, reason)
SELECT device_id, 'gas and water epochs, tariff registers in the rollups (0007)' FROM devices d
 WHERE EXISTS (SELECT 1 FROM samples s WHERE s.device_id = d.device_id)
ON CONFLICT DO NOTHING;
