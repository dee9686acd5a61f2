-- Local-day rollup: a year by day is read from ~365 rows instead of ~8,760 hourly ones.
--
-- Days are the calendar days of one time zone, named in rollup_1d_zone (one row): Europe/Brussels,
-- whose midnights are, for decades now, those of every Central European Time zone (Europe/Amsterdam,
-- Europe/Paris, …). The query service reads the zone on first use and uses rollup_1d for `1d` and
-- `1mo` buckets whenever every boundary of the request is a midnight of that zone (it checks each
-- request); any other zone is served from rollup_1h / rollup_15m as before. Columns and merge rules
-- are those of rollup_15m; bucket is the UTC instant of the local midnight. Maintained by ingest in the same statement as the other rollups,
-- from the inserted rows only. The zone is part of the schema: changing it needs a migration that
-- rebuilds this table (as below) and a restart of the query service.
CREATE TABLE rollup_1d_zone (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    tz       text NOT NULL
);
INSERT INTO rollup_1d_zone (tz) VALUES ('Europe/Brussels');

CREATE TABLE rollup_1d (LIKE rollup_15m INCLUDING ALL);

-- Existing data: the days from the quarter rollup (every zone's midnight is on the UTC quarter grid).
INSERT INTO rollup_1d
SELECT device_id, date_trunc('day', bucket, z.tz), epoch, sum(n)::int, sum(power_sum), min(power_min),
       max(power_max), sum(power_import_sum), min(first_ts), max(last_ts),
       min(import_kwh_min), max(import_kwh_max), min(export_kwh_min), max(export_kwh_max),
       min(gas_m3_min), max(gas_m3_max), min(water_m3_min), max(water_m3_max),
       (array_agg(avg_power_15m_w ORDER BY last_ts DESC))[1], (array_agg(month_peak_w ORDER BY last_ts DESC))[1]
  FROM rollup_15m CROSS JOIN rollup_1d_zone z
 GROUP BY device_id, date_trunc('day', bucket, z.tz), epoch;
