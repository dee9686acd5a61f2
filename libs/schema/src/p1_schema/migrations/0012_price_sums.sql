-- Dynamic prices, settled (issue 15's speed): Σ quarter energy × market price per device and UTC hour,
-- so a year by day reads 365 rows instead of ~35,000 quarters and ~35,000 prices. Like a continuous
-- aggregate with real-time aggregation: query reads a day's row only while it is valid and computes
-- every other hour from the quarters, the same way the row was computed (docs/design.md §14). The rows
-- are written by query's settler (`p1_query.price_sums`), never by ingest: nothing here slows a write.
--
-- A row is valid while nothing it was computed from has changed:
--   * the readings: a day that ended at or before the device's newest reading changes only when
--     devices.late_writes does (migration 0003, the rule query's answer cache relies on as well);
--   * the prices: no price_changes row newer than the row's prices_revision overlaps the day.
-- Plans do not enter the sums (markup and VAT are applied per plan when answering), so a plan load
-- leaves them valid.
CREATE TABLE price_sums (
    device_id        text NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    day              timestamptz NOT NULL CONSTRAINT price_sums_day_utc_midnight
                         CHECK (extract(epoch FROM day) % 86400 = 0),
    late_writes      bigint NOT NULL,
    prices_revision  bigint NOT NULL,
    -- 24 values each, hour 0 first (UTC): kWh × €/kWh of priced quarters, kWh priced, kWh unpriced.
    import_market    float8[] NOT NULL,
    import_priced    float8[] NOT NULL,
    import_unpriced  float8[] NOT NULL,
    export_market    float8[] NOT NULL,
    export_priced    float8[] NOT NULL,
    export_unpriced  float8[] NOT NULL,
    settled_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, day),
    CONSTRAINT price_sums_hours CHECK (
        cardinality(import_market) = 24 AND cardinality(import_priced) = 24 AND cardinality(import_unpriced) = 24
        AND cardinality(export_market) = 24 AND cardinality(export_priced) = 24
        AND cardinality(export_unpriced) = 24)
);

-- Every statement that changes energy_prices leaves the span it touched here, whoever runs it (the
-- loader, an operator's SQL): the database owns the record, so no writer can forget it. Writers are
-- serialised by the lock, taken before the revision is drawn, so revisions follow commit order and a
-- settler that saw revision r has seen every change numbered r or less.
CREATE TABLE price_changes (
    revision    bigserial PRIMARY KEY,
    first_start timestamptz NOT NULL,
    last_end    timestamptz NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX price_changes_span ON price_changes (first_start, last_end);

CREATE FUNCTION p1_record_price_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    LOCK TABLE price_changes IN SHARE ROW EXCLUSIVE MODE;
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO price_changes (first_start, last_end) VALUES ('-infinity', 'infinity');
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO price_changes (first_start, last_end)
        SELECT min(start), max("end") FROM new_rows HAVING count(*) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO price_changes (first_start, last_end)
        SELECT min(start), max("end") FROM old_rows HAVING count(*) > 0;
    ELSE  -- UPDATE: where the rows were and where they are now
        INSERT INTO price_changes (first_start, last_end)
        SELECT min(start), max("end") FROM (SELECT start, "end" FROM old_rows
                                            UNION ALL SELECT start, "end" FROM new_rows) r
        HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER energy_prices_inserted AFTER INSERT ON energy_prices
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION p1_record_price_change();
CREATE TRIGGER energy_prices_updated AFTER UPDATE ON energy_prices
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION p1_record_price_change();
CREATE TRIGGER energy_prices_deleted AFTER DELETE ON energy_prices
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION p1_record_price_change();
CREATE TRIGGER energy_prices_truncated AFTER TRUNCATE ON energy_prices
    FOR EACH STATEMENT EXECUTE FUNCTION p1_record_price_change();
