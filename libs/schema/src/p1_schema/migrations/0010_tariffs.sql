-- What energy costs (issue 15): tariff plans with valid-from dates and dynamic (market) prices.
--
-- tariff_plans: one row per (device, valid_from). `p1-ingest tariffs load FILE` replaces the whole
-- table in one transaction (the file is the truth, so loading it twice changes nothing). A plan names
-- one device or '*' (every device). For a device at an instant the plan in force is the one with the
-- latest starts_at <= the instant among the rows naming it or '*'; of a named row and a '*' row with the
-- same starts_at, the named one. So a later plan ends the earlier one at its start, and history is
-- always priced with the prices valid at each moment.
-- Prices are excl. VAT, in `currency` per kWh; a register's price is NULL only when the plan's price
-- of that direction is dynamic (then energy_prices + the markup price it).
CREATE TABLE tariff_plans (
    name                     text NOT NULL CONSTRAINT tariff_plans_name CHECK (name ~ '^[0-9A-Za-z][0-9A-Za-z._ -]{0,63}$'),
    device_id                text NOT NULL,
    valid_from               date NOT NULL,
    tz                       text NOT NULL,
    -- valid_from at 00:00 in tz, written by the loader (the one place that converts it).
    starts_at                timestamptz NOT NULL CONSTRAINT tariff_plans_starts_in_range
                                 CHECK (starts_at >= TIMESTAMPTZ '2000-01-01 00:00:00+00'
                                        AND starts_at < TIMESTAMPTZ '2100-01-01 00:00:00+00'),
    import_t1                numeric CONSTRAINT tariff_plans_import_t1 CHECK (import_t1 BETWEEN -10 AND 10),
    import_t2                numeric CONSTRAINT tariff_plans_import_t2 CHECK (import_t2 BETWEEN -10 AND 10),
    import_dynamic           boolean NOT NULL DEFAULT false,
    import_markup            numeric NOT NULL DEFAULT 0 CONSTRAINT tariff_plans_import_markup CHECK (import_markup BETWEEN -10 AND 10),
    export_t1                numeric CONSTRAINT tariff_plans_export_t1 CHECK (export_t1 BETWEEN -10 AND 10),
    export_t2                numeric CONSTRAINT tariff_plans_export_t2 CHECK (export_t2 BETWEEN -10 AND 10),
    export_dynamic           boolean NOT NULL DEFAULT false,
    export_markup            numeric NOT NULL DEFAULT 0 CONSTRAINT tariff_plans_export_markup CHECK (export_markup BETWEEN -10 AND 10),
    fixed_eur_per_month      numeric NOT NULL DEFAULT 0 CONSTRAINT tariff_plans_fixed CHECK (fixed_eur_per_month BETWEEN 0 AND 100000),
    -- NULL: the capacity price of the ledger (GRID_OPERATOR / CAPACITY_PRICE_EUR_PER_KW_YEAR / fallback)
    capacity_eur_per_kw_year numeric CONSTRAINT tariff_plans_capacity CHECK (capacity_eur_per_kw_year BETWEEN 0 AND 100000),
    grid_operator            text,
    vat                      numeric NOT NULL DEFAULT 0 CONSTRAINT tariff_plans_vat CHECK (vat BETWEEN 0 AND 1),
    currency                 text NOT NULL DEFAULT 'EUR' CONSTRAINT tariff_plans_currency CHECK (currency ~ '^[A-Z]{3}$'),
    loaded_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, valid_from),
    -- a direction is either dynamic or has both register prices
    CONSTRAINT tariff_plans_import_form CHECK (import_dynamic = (import_t1 IS NULL) AND (import_t1 IS NULL) = (import_t2 IS NULL)),
    CONSTRAINT tariff_plans_export_form CHECK (export_dynamic = (export_t1 IS NULL) AND (export_t1 IS NULL) = (export_t2 IS NULL))
);
CREATE INDEX tariff_plans_by_start ON tariff_plans (device_id, starts_at);

-- energy_prices: the market's prices (hourly or quarter-hourly), excl. VAT and excl. a plan's markup,
-- loaded by `p1-ingest prices load FILE.csv`, idempotent by start (a row loaded again replaces the
-- earlier one). A direction's price may be NULL (unknown): a bucket needing it gets a null cost.
CREATE TABLE energy_prices (
    start              timestamptz PRIMARY KEY CONSTRAINT energy_prices_start_in_range
                           CHECK (start >= TIMESTAMPTZ '2000-01-01 00:00:00+00' AND start < TIMESTAMPTZ '2100-01-01 00:00:00+00'),
    "end"              timestamptz NOT NULL,
    import_eur_per_kwh numeric CONSTRAINT energy_prices_import CHECK (import_eur_per_kwh BETWEEN -10 AND 10),
    export_eur_per_kwh numeric CONSTRAINT energy_prices_export CHECK (export_eur_per_kwh BETWEEN -10 AND 10),
    CONSTRAINT energy_prices_span CHECK ("end" > start AND "end" <= start + interval '1 day')
);

-- One number that changes with every load of plans or prices: query keys every answer carrying costs
-- by it (with the device's own version), so a new plan reaches cached answers at once.
CREATE TABLE tariff_revision (
    one      boolean PRIMARY KEY DEFAULT true CONSTRAINT tariff_revision_one CHECK (one),
    revision bigint NOT NULL
);
INSERT INTO tariff_revision VALUES (true, 0);
