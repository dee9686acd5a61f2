-- Commits that stored a reading at or before the device's newest one (late data). With last_ts it
-- versions everything the query service derives from a device's readings: an answer about a range
-- that ends at or before last_ts changes only when late_writes does (a newer reading cannot move it),
-- so such answers are cached under late_writes; answers about later ranges under (late_writes, last_ts).
-- Maintained by ingest in the statement that inserts the readings, so it is exact, Redis or not.
ALTER TABLE devices ADD COLUMN late_writes bigint NOT NULL DEFAULT 0;
