-- 0005: counters that cannot lie (integrity flags, each device's integrity state) and the supported
-- time range in storage (p1_contracts.timerange: 2000-01-01T00:00:00Z ≤ t < 2100-01-01T00:00:00Z; a test
-- holds the literals below equal to it). Valid on plain PostgreSQL (partitioned samples) and on
-- TimescaleDB (hypertable with compression): ADD COLUMN without default and CHECK constraints are
-- allowed on a compressed hypertable, and DELETE reaches compressed chunks (>= 2.11).

-- Only an ingest that writes flags and the integrity state may write from now on (0004's guard, next
-- version); this migration's own updates of devices announce it.
CREATE OR REPLACE FUNCTION p1_require_current_ingest() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF coalesce(current_setting('p1.ingest_writer', true), '') <> '5' THEN
        RAISE EXCEPTION 'this ingest is older than the database schema (migration 0005): upgrade it; '
                        'edges keep their readings until then'
            USING ERRCODE = 'cannot_connect_now';
    END IF;
    RETURN NULL;
END
$fn$;
SELECT set_config('p1.ingest_writer', '5', true);

-- Integrity flag of a reading (services/ingest/NOTES.md, "Counter integrity"): NULL = good; 'suspect' =
-- inconsistent with the device's good readings, undecided (a glitch or the start of a new counter);
-- 'glitch' = decided: a bad reading. Flagged readings are kept raw and counted nowhere (no rollup, no
-- series, no capacity; the raw export shows the flag).
-- (No index for the suspects: they are exactly the device's readings from devices.run_start on, which
-- the primary key finds.)
ALTER TABLE samples ADD COLUMN flag text CONSTRAINT samples_flag_known CHECK (flag IN ('suspect', 'glitch'));

-- The integrity state of the device's current epoch: the newest good reading and, per counter,
-- m = min(counter − r·t) over the epoch's good readings (r = MAX_POWER_W in kWh/s, t in Unix seconds),
-- which lets one comparison check a new reading against all of them; integrity_power_w is the
-- MAX_POWER_W m was computed with (another value, or NULL on rows from before this migration: ingest
-- starts again from the newest good reading). run_start/run_n: the pending suspects, if any.
ALTER TABLE devices
    ADD COLUMN good_ts timestamptz,
    ADD COLUMN good_import_kwh float8,
    ADD COLUMN good_export_kwh float8,
    ADD COLUMN good_import_m float8,
    ADD COLUMN good_export_m float8,
    ADD COLUMN integrity_power_w float8,
    ADD COLUMN run_start timestamptz,
    ADD COLUMN run_n int NOT NULL DEFAULT 0;

-- Devices whose epochs, flags and rollups are rebuilt from their raw readings by the same rules as
-- ingest (p1_ingest.rebuild); `p1-ingest migrate` does it for every device queued here, in the
-- migration's transaction (the hook it gives p1_schema.migrate), and empties the queue. The runner
-- records no migration while the queue holds a device.
CREATE TABLE device_rebuilds (
    device_id text PRIMARY KEY,
    reason    text NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now()
);

-- Readings outside the supported range are moved here (never deleted): no query can read them, and
-- one of them at 0001-01-01 made a device's first_seen -infinity, which broke it for good.
CREATE TABLE samples_out_of_range (
    LIKE samples INCLUDING DEFAULTS,
    moved_at timestamptz NOT NULL DEFAULT now()
);

WITH moved AS (
    DELETE FROM samples
     WHERE ts < TIMESTAMPTZ '2000-01-01 00:00:00+00' OR ts >= TIMESTAMPTZ '2100-01-01 00:00:00+00'
    RETURNING *
), kept AS (
    INSERT INTO samples_out_of_range SELECT *, now() FROM moved RETURNING device_id
)
INSERT INTO device_rebuilds (device_id, reason)
SELECT DISTINCT device_id, 'reading outside the supported range' FROM kept
ON CONFLICT DO NOTHING;

INSERT INTO device_rebuilds (device_id, reason)
SELECT device_id, 'device times outside the supported range' FROM devices
 WHERE NOT (first_seen >= TIMESTAMPTZ '2000-01-01 00:00:00+00' AND first_seen < TIMESTAMPTZ '2100-01-01 00:00:00+00'
            AND last_seen >= TIMESTAMPTZ '2000-01-01 00:00:00+00' AND last_seen < TIMESTAMPTZ '2100-01-01 00:00:00+00'
            AND coalesce(last_ts >= TIMESTAMPTZ '2000-01-01 00:00:00+00'
                         AND last_ts < TIMESTAMPTZ '2100-01-01 00:00:00+00', true))
ON CONFLICT DO NOTHING;

-- Rollup rows holding an out-of-range reading (first_ts and last_ts are their readings' extremes; for
-- rollup_15m and rollup_1h that is exactly a bucket outside the range). The rebuild makes the rows of
-- the remaining readings again.
DELETE FROM rollup_15m r USING device_rebuilds q
 WHERE r.device_id = q.device_id
   AND (r.first_ts < TIMESTAMPTZ '2000-01-01 00:00:00+00' OR r.last_ts >= TIMESTAMPTZ '2100-01-01 00:00:00+00');
DELETE FROM rollup_1h r USING device_rebuilds q
 WHERE r.device_id = q.device_id
   AND (r.first_ts < TIMESTAMPTZ '2000-01-01 00:00:00+00' OR r.last_ts >= TIMESTAMPTZ '2100-01-01 00:00:00+00');
DELETE FROM rollup_1d r USING device_rebuilds q
 WHERE r.device_id = q.device_id
   AND (r.first_ts < TIMESTAMPTZ '2000-01-01 00:00:00+00' OR r.last_ts >= TIMESTAMPTZ '2100-01-01 00:00:00+00');

-- Epochs that began outside the range began at such a reading (the rebuild makes them again).
DELETE FROM counter_epochs c USING device_rebuilds q
 WHERE c.device_id = q.device_id
   AND (c.started_at < TIMESTAMPTZ '2000-01-01 00:00:00+00' OR c.started_at >= TIMESTAMPTZ '2100-01-01 00:00:00+00');

-- A device with nothing left goes (its epochs with it); the others get their times from what remains
-- (the rebuild then recomputes everything else).
WITH left_over AS (
    SELECT q.device_id,
           (SELECT min(ts) FROM samples s WHERE s.device_id = q.device_id) AS raw_first,
           (SELECT max(ts) FROM samples s WHERE s.device_id = q.device_id) AS raw_last,
           (SELECT min(first_ts) FROM rollup_15m r WHERE r.device_id = q.device_id) AS roll_first,
           (SELECT max(last_ts) FROM rollup_15m r WHERE r.device_id = q.device_id) AS roll_last
      FROM device_rebuilds q
), gone AS (
    DELETE FROM devices d USING left_over l
     WHERE d.device_id = l.device_id AND l.raw_first IS NULL AND l.roll_first IS NULL
    RETURNING d.device_id
), dequeued AS (
    DELETE FROM device_rebuilds q USING gone g WHERE q.device_id = g.device_id RETURNING 1
)
UPDATE devices d
   SET first_seen = least(l.raw_first, l.roll_first),
       last_seen = greatest(l.raw_last, l.roll_last),
       last_ts = greatest(l.raw_last, l.roll_last),
       last_import_kwh = (SELECT import_kwh FROM samples s WHERE s.device_id = d.device_id ORDER BY ts DESC LIMIT 1),
       last_export_kwh = (SELECT export_kwh FROM samples s WHERE s.device_id = d.device_id ORDER BY ts DESC LIMIT 1),
       updated_at = now()
  FROM left_over l
 WHERE d.device_id = l.device_id AND (l.raw_first IS NOT NULL OR l.roll_first IS NOT NULL);

-- The range in storage, for good.
ALTER TABLE samples ADD CONSTRAINT samples_ts_in_range
    CHECK (ts >= TIMESTAMPTZ '2000-01-01 00:00:00+00' AND ts < TIMESTAMPTZ '2100-01-01 00:00:00+00');
ALTER TABLE devices
    ADD CONSTRAINT devices_first_seen_in_range
        CHECK (first_seen >= TIMESTAMPTZ '2000-01-01 00:00:00+00' AND first_seen < TIMESTAMPTZ '2100-01-01 00:00:00+00'),
    ADD CONSTRAINT devices_last_seen_in_range
        CHECK (last_seen >= TIMESTAMPTZ '2000-01-01 00:00:00+00' AND last_seen < TIMESTAMPTZ '2100-01-01 00:00:00+00'),
    ADD CONSTRAINT devices_last_ts_in_range
        CHECK (last_ts >= TIMESTAMPTZ '2000-01-01 00:00:00+00' AND last_ts < TIMESTAMPTZ '2100-01-01 00:00:00+00');

-- New monthly partitions (plain PostgreSQL) must carry the parent's CHECK constraints to be attached:
-- 0001's function, now copying them (LIKE … INCLUDING CONSTRAINTS).
CREATE OR REPLACE FUNCTION p1_ensure_samples_partition(month_start date) RETURNS boolean
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
    EXECUTE format('CREATE TABLE %I (LIKE samples INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
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
