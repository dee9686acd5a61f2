-- Only an ingest that writes what this schema expects may store readings. An older one would store
-- them without their local-day rollup (0002) and without counting late data (0003): days undercounted
-- and cached answers stale, for good. During a rolling upgrade (migrate runs while the old ingest still
-- serves) the old ingest's writes therefore fail, as "cannot connect now", which it answers 503 with
-- Retry-After; the edges keep those readings and upload them again, to the new ingest. Nothing is lost.
--
-- The current ingest names its writer version in the first statement of its transaction
-- (set_config('p1.ingest_writer', …, true)); every write ends with an UPDATE of the device's row.
-- A migration that changes what ingest must write replaces this function with the next version.
CREATE FUNCTION p1_require_current_ingest() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF coalesce(current_setting('p1.ingest_writer', true), '') <> '4' THEN
        RAISE EXCEPTION 'this ingest is older than the database schema (migration 0004): upgrade it; '
                        'edges keep their readings until then'
            USING ERRCODE = 'cannot_connect_now';
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER p1_require_current_ingest BEFORE UPDATE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION p1_require_current_ingest();
