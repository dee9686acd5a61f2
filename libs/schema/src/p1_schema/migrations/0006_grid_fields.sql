-- 0006: every field the meter gives about the grid connection (issue 13.6; docs/design.md, "What the
-- edge keeps of a reading"): total current, frequency, power failures, voltage sags and swells, and the
-- gas and water meters' ids. Nullable: older readings and meters that do not give them have none.
-- The CHECKs say the contract's ranges (openapi.yaml, Sample) once more in storage, so that no writer
-- (a restore, a bulk load) stores what ingest would refuse. Valid on plain PostgreSQL and on a
-- compressed TimescaleDB hypertable (ADD COLUMN without default, CHECK constraints: as 0005).

-- Ingest writes the new columns from now on: an older one would drop them (0004's guard, next version).
-- From here on the guard asks p1_ingest_writer_required() which writer it needs, so a later migration
-- that changes what ingest writes replaces that one line, not the whole guard.
CREATE FUNCTION p1_ingest_writer_required() RETURNS text LANGUAGE sql STABLE AS $$ SELECT '6' $$;
CREATE OR REPLACE FUNCTION p1_require_current_ingest() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    required text := p1_ingest_writer_required();
BEGIN
    IF coalesce(current_setting('p1.ingest_writer', true), '') <> required THEN
        RAISE EXCEPTION 'this ingest is older than the database schema (it needs ingest writer %): upgrade '
                        'it; edges keep their readings until then', required
            USING ERRCODE = 'cannot_connect_now';
    END IF;
    RETURN NULL;
END
$fn$;

-- Counts are DSMR's five-digit counters (F5(0)): whole, 0..99999, in an int column.
ALTER TABLE samples
    ADD COLUMN current_a float8 CONSTRAINT samples_current_a_range CHECK (current_a BETWEEN -10000 AND 10000),
    ADD COLUMN frequency_hz float8 CONSTRAINT samples_frequency_hz_range CHECK (frequency_hz BETWEEN 45 AND 65),
    ADD COLUMN power_fail_count int
        CONSTRAINT samples_power_fail_count_range CHECK (power_fail_count BETWEEN 0 AND 99999),
    ADD COLUMN long_power_fail_count int
        CONSTRAINT samples_long_power_fail_count_range CHECK (long_power_fail_count BETWEEN 0 AND 99999),
    ADD COLUMN voltage_sag_l1_count int
        CONSTRAINT samples_voltage_sag_l1_count_range CHECK (voltage_sag_l1_count BETWEEN 0 AND 99999),
    ADD COLUMN voltage_sag_l2_count int
        CONSTRAINT samples_voltage_sag_l2_count_range CHECK (voltage_sag_l2_count BETWEEN 0 AND 99999),
    ADD COLUMN voltage_sag_l3_count int
        CONSTRAINT samples_voltage_sag_l3_count_range CHECK (voltage_sag_l3_count BETWEEN 0 AND 99999),
    ADD COLUMN voltage_swell_l1_count int
        CONSTRAINT samples_voltage_swell_l1_count_range CHECK (voltage_swell_l1_count BETWEEN 0 AND 99999),
    ADD COLUMN voltage_swell_l2_count int
        CONSTRAINT samples_voltage_swell_l2_count_range CHECK (voltage_swell_l2_count BETWEEN 0 AND 99999),
    ADD COLUMN voltage_swell_l3_count int
        CONSTRAINT samples_voltage_swell_l3_count_range CHECK (voltage_swell_l3_count BETWEEN 0 AND 99999),
    -- Hex digits as the meter sends them (contract pattern ^[0-9A-Fa-f]{1,128}$).
    ADD COLUMN gas_unique_id text
        CONSTRAINT samples_gas_unique_id_hex CHECK (gas_unique_id ~ '^[0-9A-Fa-f]{1,128}$'),
    ADD COLUMN water_unique_id text
        CONSTRAINT samples_water_unique_id_hex CHECK (water_unique_id ~ '^[0-9A-Fa-f]{1,128}$');
