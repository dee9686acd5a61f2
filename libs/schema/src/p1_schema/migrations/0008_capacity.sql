-- The capacity ledger complete from day one (issue 13 §7).
--
-- meter_peaks: the peak quarter-hour demand of each month as the meter itself reports it (DSMR OBIS
-- 0-0:98.1.0, 13 months of history, and 1-0:1.6.0, the running month), uploaded by the edge through
-- PUT /v1/devices/{device_id}/meter-peaks. One row per device and month (the meter's local month,
-- YYYY-MM); of two reports the later peak_ts wins (a month's peak only rises), of equal times the higher
-- peak_w. No foreign key to devices: an edge may report the history before its first reading.
CREATE TABLE meter_peaks (
    device_id   text NOT NULL,
    month       text NOT NULL CONSTRAINT meter_peaks_month_form
                    CHECK (month ~ '^20[0-9]{2}-(0[1-9]|1[0-2])$'),
    peak_w      float8 NOT NULL CONSTRAINT meter_peaks_peak_w_bounds CHECK (peak_w >= 0 AND peak_w <= 1000000),
    peak_ts     timestamptz NOT NULL CONSTRAINT meter_peaks_peak_ts_in_range
                    CHECK (peak_ts >= TIMESTAMPTZ '2000-01-01 00:00:00+00'
                           AND peak_ts < TIMESTAMPTZ '2100-01-01 00:00:00+00'),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, month)
);

-- Commits of PUT …/meter-peaks that changed a stored peak: with last_ts and late_writes, the version the
-- query cache keys every answer by (docs/design.md §9), so a report reaches final capacity answers.
ALTER TABLE devices ADD COLUMN meter_peak_writes bigint NOT NULL DEFAULT 0;

-- capacity_quarters: the demand (kW) of every completed quarter with readings, by the rules of
-- p1_schema.capacity (docs/design.md §8), kept by ingest in the transaction that writes the rollups
-- (p1_schema.capacity.REFRESH_SQL: the quarters written and their two neighbours), so that a ledger of
-- 12 months ranks ~35,000 narrow rows instead of running the rules over a year of rollup_15m rows.
-- `p1-ingest rebuild` and the bulk loader keep it too. kw is INCLUDEd in the key's index: a month's top
-- quarters and its count are read from the index alone.
CREATE TABLE capacity_quarters (
    device_id text NOT NULL,
    bucket    timestamptz NOT NULL,
    kw        float8 NOT NULL,
    PRIMARY KEY (device_id, bucket) INCLUDE (kw)
);

-- The rules, as one function of (device, lo, hi): the demand of each completed quarter of [lo, hi).
-- Its body is p1_schema.capacity.DEMAND_FUNCTION_BODY, to the character (a test holds them equal).
CREATE FUNCTION p1_capacity_quarters(text, timestamptz, timestamptz)
    RETURNS TABLE (bucket timestamptz, kw float8) LANGUAGE sql STABLE PARALLEL SAFE
AS $body$
WITH quarter_rows AS (
    (SELECT 
    bucket, epoch, n, power_import_sum, first_ts, last_ts, import_kwh_min AS first_kwh,
    import_kwh_max AS last_kwh, avg_power_15m_w AS meter_avg_w FROM rollup_15m WHERE device_id = $1 AND bucket >= $2 AND bucket < $3)
    UNION ALL
    (SELECT 
    bucket, epoch, n, power_import_sum, first_ts, last_ts, import_kwh_min AS first_kwh,
    import_kwh_max AS last_kwh, avg_power_15m_w AS meter_avg_w FROM rollup_15m WHERE device_id = $1 AND bucket < $2
      ORDER BY bucket DESC, epoch DESC LIMIT 1)
    UNION ALL
    (SELECT 
    bucket, epoch, n, power_import_sum, first_ts, last_ts, import_kwh_min AS first_kwh,
    import_kwh_max AS last_kwh, avg_power_15m_w AS meter_avg_w FROM rollup_15m WHERE device_id = $1 AND bucket >= $3
      ORDER BY bucket, epoch LIMIT 1)
), around AS (
    SELECT *,
           lag(epoch) OVER by_time AS prev_epoch, lag(last_ts) OVER by_time AS prev_ts,
           lag(last_kwh) OVER by_time AS prev_kwh,
           lead(epoch) OVER by_time AS next_epoch, lead(first_ts) OVER by_time AS next_ts,
           lead(first_kwh) OVER by_time AS next_kwh, lead(bucket) OVER by_time AS next_bucket,
           count(*) OVER quarter AS epochs, sum(n) OVER quarter AS readings,
           sum(power_import_sum) OVER quarter AS positive_sum,
           extract(epoch FROM bucket + interval '900 seconds' - last_ts)::float8 AS to_end
      FROM quarter_rows
    WINDOW by_time AS (ORDER BY bucket, epoch), quarter AS (PARTITION BY bucket)
), demand AS (
    SELECT bucket,
           CASE
             WHEN meter_avg_w IS NOT NULL AND to_end <= 60
               THEN greatest(meter_avg_w, 0) / 1000
             WHEN epochs = 1 AND first_kwh IS NOT NULL AND last_kwh IS NOT NULL
                  AND next_epoch = epoch AND next_kwh IS NOT NULL
                  AND (first_ts <= bucket OR (prev_epoch = epoch AND prev_kwh IS NOT NULL)) THEN
               greatest(0,
                 last_kwh + (next_kwh - last_kwh) * to_end / extract(epoch FROM next_ts - last_ts)::float8
                 - CASE WHEN first_ts <= bucket THEN first_kwh
                        ELSE prev_kwh + (first_kwh - prev_kwh) * extract(epoch FROM bucket - prev_ts)::float8
                                        / extract(epoch FROM first_ts - prev_ts)::float8 END) * 4
             ELSE positive_sum / readings / 1000
           END AS kw
      FROM around
     -- epochs follow each other in time: a quarter's last row by epoch holds its last reading, and
     -- the row after it, if any, is a later quarter's
     WHERE next_bucket IS DISTINCT FROM bucket AND next_bucket IS NOT NULL
       AND bucket >= $2 AND bucket < $3 AND readings > 0
)
SELECT bucket, kw FROM demand$body$;

-- The demands of the history already stored.
INSERT INTO capacity_quarters (device_id, bucket, kw)
SELECT d.device_id, q.bucket, q.kw
  FROM devices d
 CROSS JOIN LATERAL p1_capacity_quarters(d.device_id, TIMESTAMPTZ '2000-01-01 00:00:00+00',
                                         TIMESTAMPTZ '2100-01-01 00:00:00+00') q;

-- capacity_days: per device and UTC day, its count of completed quarters and its 5 highest (kw
-- descending, then the earlier; p1_schema.capacity.DAY_TOPS), kept with capacity_quarters: a month's
-- ledger reads its ~30 days and the quarters of the partial days at its ends.
CREATE TABLE capacity_days (
    device_id text NOT NULL,
    day       timestamptz NOT NULL,
    quarters  int NOT NULL,
    buckets   timestamptz[] NOT NULL,
    kws       float8[] NOT NULL,
    PRIMARY KEY (device_id, day)
);
INSERT INTO capacity_days 
    SELECT device_id, date_bin('1 day', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS day, count(*)::int AS quarters,
           (array_agg(bucket ORDER BY kw DESC, bucket))[1:5] AS buckets,
           (array_agg(kw ORDER BY kw DESC, bucket))[1:5] AS kws
      FROM capacity_quarters GROUP BY 1, 2;

-- Only an ingest that keeps capacity_quarters may write from now on (0004's guard, next version).
CREATE OR REPLACE FUNCTION p1_ingest_writer_required() RETURNS text LANGUAGE sql STABLE AS $$ SELECT '8' $$;
