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
