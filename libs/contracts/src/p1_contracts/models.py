# Generated from openapi.yaml by `make contracts` (datamodel-code-generator). Do not edit.

from __future__ import annotations

from typing import Annotated, Literal

from p1_contracts.base import ContractModel
from pydantic import AwareDatetime, ConfigDict, Field, RootModel


class Meter(ContractModel):
    """
    The smart meter behind the P1 port (not the P1 dongle). Unknown properties are ignored.
    """

    serial: Annotated[
        str, Field(max_length=128, min_length=1, pattern='^[^\\x00-\\x1F\\x7F-\\x9F]*$')
    ]
    """
    The meter's equipment id (`unique_id` of the P1 API); no control characters.
    """
    model: Annotated[
        str | None, Field(max_length=128, pattern='^[^\\x00-\\x1F\\x7F-\\x9F]*$')
    ] = None
    """
    The meter's model name; no control characters.
    """
    protocol_version: Annotated[
        float | None, Field(ge=0.0, le=1000.0, multiple_of=1.0)
    ] = None
    """
    DSMR version, e.g. 50 for DSMR 5.0.
    """


class Sample(ContractModel):
    """
    One reading of the meter. Energies are meter totals (they only grow, except when the meter is
    replaced). Optional values that the meter does not give are absent or null (the same). Unknown
    properties are ignored.

    """

    ts: AwareDatetime
    """
    When the meter took the reading; RFC 3339 with an offset, at most 5 minutes ahead, and inside the
    supported range (2000-01-01T00:00:00Z inclusive to 2100-01-01T00:00:00Z exclusive), as is every
    date-time of a Sample: a value outside it is refused with 422 naming the reading and the field.
    Every date-time of a Sample is written as the pattern says (upper-case `T` and `Z`, seconds
    00–59, at most six fraction digits); the pattern cannot say the range on its first and last day
    once the offset is applied, nor "5 minutes ahead" (see the operation's `x-semantic-rejections`).

    """
    power_w: Annotated[float, Field(ge=-1000000.0, le=1000000.0)]
    """
    Watts; positive is offtake (import), negative is injection (export).
    """
    import_kwh: Annotated[float, Field(ge=0.0, le=1000000000.0)]
    """
    kWh meter total.
    """
    export_kwh: Annotated[float, Field(ge=0.0, le=1000000000.0)]
    """
    kWh meter total.
    """
    import_t1_kwh: Annotated[float | None, Field(ge=0.0, le=1000000000.0)] = None
    """
    kWh meter total.
    """
    import_t2_kwh: Annotated[float | None, Field(ge=0.0, le=1000000000.0)] = None
    """
    kWh meter total.
    """
    import_t3_kwh: Annotated[float | None, Field(ge=0.0, le=1000000000.0)] = None
    """
    kWh meter total.
    """
    import_t4_kwh: Annotated[float | None, Field(ge=0.0, le=1000000000.0)] = None
    """
    kWh meter total.
    """
    export_t1_kwh: Annotated[float | None, Field(ge=0.0, le=1000000000.0)] = None
    """
    kWh meter total.
    """
    export_t2_kwh: Annotated[float | None, Field(ge=0.0, le=1000000000.0)] = None
    """
    kWh meter total.
    """
    export_t3_kwh: Annotated[float | None, Field(ge=0.0, le=1000000000.0)] = None
    """
    kWh meter total.
    """
    export_t4_kwh: Annotated[float | None, Field(ge=0.0, le=1000000000.0)] = None
    """
    kWh meter total.
    """
    tariff: Annotated[float | None, Field(ge=1.0, le=4.0, multiple_of=1.0)] = None
    """
    The active tariff register (1–4), a whole number.
    """
    power_l1_w: Annotated[float | None, Field(ge=-1000000.0, le=1000000.0)] = None
    """
    Watts; positive is offtake (import), negative is injection (export).
    """
    power_l2_w: Annotated[float | None, Field(ge=-1000000.0, le=1000000.0)] = None
    """
    Watts; positive is offtake (import), negative is injection (export).
    """
    power_l3_w: Annotated[float | None, Field(ge=-1000000.0, le=1000000.0)] = None
    """
    Watts; positive is offtake (import), negative is injection (export).
    """
    voltage_l1_v: Annotated[float | None, Field(ge=0.0, le=1000.0)] = None
    voltage_l2_v: Annotated[float | None, Field(ge=0.0, le=1000.0)] = None
    voltage_l3_v: Annotated[float | None, Field(ge=0.0, le=1000.0)] = None
    current_l1_a: Annotated[float | None, Field(ge=-10000.0, le=10000.0)] = None
    current_l2_a: Annotated[float | None, Field(ge=-10000.0, le=10000.0)] = None
    current_l3_a: Annotated[float | None, Field(ge=-10000.0, le=10000.0)] = None
    avg_power_15m_w: Annotated[float | None, Field(ge=0.0, le=1000000.0)] = None
    """
    The meter's running average offtake of the current quarter-hour (Belgian meters).
    """
    month_peak_w: Annotated[float | None, Field(ge=0.0, le=1000000.0)] = None
    """
    The meter's own highest quarter-hour average of the month (Belgian meters).
    """
    month_peak_ts: AwareDatetime | None = None
    gas_m3: Annotated[float | None, Field(ge=0.0, le=1000000000.0)] = None
    """
    m³ meter total.
    """
    gas_ts: AwareDatetime | None = None
    water_m3: Annotated[float | None, Field(ge=0.0, le=1000000000.0)] = None
    """
    m³ meter total.
    """
    water_ts: AwareDatetime | None = None
    current_a: Annotated[float | None, Field(ge=-10000.0, le=10000.0)] = None
    """
    The current of all phases together, as the meter's API gives it (API v2 `current_a`).
    """
    frequency_hz: Annotated[float | None, Field(ge=45.0, le=65.0)] = None
    """
    Grid frequency (Hz); a 50 Hz grid stays well inside 45–65.
    """
    power_fail_count: Annotated[
        float | None, Field(ge=0.0, le=99999.0, multiple_of=1.0)
    ] = None
    """
    Power failures in any phase since the meter was installed (DSMR 0-0:96.7.21; 5 digits).
    """
    long_power_fail_count: Annotated[
        float | None, Field(ge=0.0, le=99999.0, multiple_of=1.0)
    ] = None
    """
    Long power failures in any phase (DSMR 0-0:96.7.9; 5 digits).
    """
    voltage_sag_l1_count: Annotated[
        float | None, Field(ge=0.0, le=99999.0, multiple_of=1.0)
    ] = None
    """
    Voltage sags in phase L1 (DSMR 1-0:32.32.0; 5 digits).
    """
    voltage_sag_l2_count: Annotated[
        float | None, Field(ge=0.0, le=99999.0, multiple_of=1.0)
    ] = None
    """
    Voltage sags in phase L2 (DSMR 1-0:52.32.0; 5 digits).
    """
    voltage_sag_l3_count: Annotated[
        float | None, Field(ge=0.0, le=99999.0, multiple_of=1.0)
    ] = None
    """
    Voltage sags in phase L3 (DSMR 1-0:72.32.0; 5 digits).
    """
    voltage_swell_l1_count: Annotated[
        float | None, Field(ge=0.0, le=99999.0, multiple_of=1.0)
    ] = None
    """
    Voltage swells in phase L1 (DSMR 1-0:32.36.0; 5 digits).
    """
    voltage_swell_l2_count: Annotated[
        float | None, Field(ge=0.0, le=99999.0, multiple_of=1.0)
    ] = None
    """
    Voltage swells in phase L2 (DSMR 1-0:52.36.0; 5 digits).
    """
    voltage_swell_l3_count: Annotated[
        float | None, Field(ge=0.0, le=99999.0, multiple_of=1.0)
    ] = None
    """
    Voltage swells in phase L3 (DSMR 1-0:72.36.0; 5 digits).
    """
    gas_unique_id: Annotated[
        str | None, Field(max_length=128, min_length=1, pattern='^[0-9A-Fa-f]{1,128}$')
    ] = None
    """
    The gas meter's equipment id as the P1 API sends it (`unique_id` of its `external[]` entry,
    the hex digits of the id's text), kept with its reading so that a meter replacement shows.

    """
    water_unique_id: Annotated[
        str | None, Field(max_length=128, min_length=1, pattern='^[0-9A-Fa-f]{1,128}$')
    ] = None
    """
    The water meter's equipment id as the P1 API sends it (`unique_id` of its `external[]` entry,
    the hex digits of the id's text), kept with its reading so that a meter replacement shows.

    """


class EdgeState(ContractModel):
    """
    What the edge reports of itself with each upload. Counts are whole numbers (`multipleOf: 1`).
    Unknown properties are ignored.

    """

    spool_depth: Annotated[float, Field(ge=0.0, le=1000000000.0, multiple_of=1.0)]
    """
    Readings waiting in the edge's spool when the batch left, the batch's own included.
    """
    spool_oldest_age_s: Annotated[float, Field(ge=0.0, le=3200000000.0)]
    """
    Seconds between the oldest waiting reading and the moment the batch left.
    """
    quarantined: Annotated[float, Field(ge=0.0, le=1000000000.0, multiple_of=1.0)]
    """
    Readings ingest refused as invalid, kept in the edge's quarantine for a human.
    """
    spool_dropped: Annotated[float, Field(ge=0.0, le=1000000000000.0, multiple_of=1.0)]
    """
    Readings dropped because the spool was full (`SPOOL_MAX_ROWS`), over the spool's life.
    """
    meter_errors: Annotated[float, Field(ge=0.0, le=1000000000000.0, multiple_of=1.0)]
    """
    Meter polls that failed since the edge started (starts again at 0 with `uptime_s`).
    """
    version: Annotated[
        str,
        Field(
            max_length=64, min_length=1, pattern='^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$'
        ),
    ]
    """
    The edge software's version (letters, digits, `.`, `+`, `_`, `-`).
    """
    uptime_s: Annotated[float, Field(ge=0.0, le=3200000000.0)]
    """
    Seconds since the edge process started.
    """


class EdgeReport(EdgeState):
    """
    The latest EdgeState a device's edge sent, with the time ingest stored it.
    """

    reported_at: AwareDatetime
    """
    When ingest stored the batch that carried the report (the server's clock).
    """


class MeterPeak(ContractModel):
    month: Annotated[str, Field(pattern='^20[0-9]{2}-(0[1-9]|1[0-2])$')]
    """
    The meter's local calendar month, `YYYY-MM`.
    """
    peak_w: Annotated[float, Field(ge=0.0, le=1000000.0)]
    """
    The month's highest quarter-hour demand as the meter computed it, in W.
    """
    peak_ts: AwareDatetime
    """
    The peak's time as the meter stamps it (the end of its quarter), in the meter's local offset:
    within `month`, or 00:00 of the next month for the month's last quarter.

    """


class MeterPeaksResult(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    stored: Annotated[int, Field(ge=0)]
    """
    The body's months whose stored peak is now the one sent.
    """


class IngestResult(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    accepted: Annotated[int, Field(ge=0)]
    """
    Readings stored by this request.
    """
    duplicates: Annotated[int, Field(ge=0)]
    """
    Readings that were already stored (or repeated within the batch) and changed nothing.
    """


class Device(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    device_id: Annotated[
        str,
        Field(
            examples=['3c39e7aabbcc'],
            max_length=64,
            min_length=1,
            pattern='^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
        ),
    ]
    """
    Letters, digits, `.`, `_` and `-`; starts with a letter or digit.
    """
    first_seen: AwareDatetime
    """
    The oldest reading's time.
    """
    last_seen: AwareDatetime
    """
    The newest reading's time.
    """
    meter: Meter | None
    edge: EdgeReport | None
    """
    The edge's latest report (SampleBatch `edge`); null until an edge sent one.
    """


class Realtime(Sample):
    """
    The newest Sample of the device, with `device_id` and its age in seconds at answer time.
    """

    device_id: Annotated[
        str,
        Field(
            examples=['3c39e7aabbcc'],
            max_length=64,
            min_length=1,
            pattern='^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
        ),
    ]
    """
    Letters, digits, `.`, `_` and `-`; starts with a letter or digit.
    """
    age_s: float
    """
    Seconds between `ts` and the answer (negative when the meter's clock runs ahead).
    """


class ExportBucket(RootModel[Literal['raw', '15m', '1h', '1d']]):
    root: Literal['raw', '15m', '1h', '1d'] = 'raw'


class ExportFormat(RootModel[Literal['csv', 'ndjson']]):
    root: Literal['csv', 'ndjson'] = 'csv'


class SeriesPoint(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    start: AwareDatetime
    """
    Local start of the bucket, with the offset in force then.
    """
    end: AwareDatetime
    samples: Annotated[int, Field(ge=0)]
    power_avg_w: float | None
    power_min_w: float | None
    power_max_w: float | None
    import_kwh: Annotated[float | None, Field(ge=0.0)]
    """
    Offtake energy in the bucket (interpolated counter at end minus at start).
    """
    export_kwh: Annotated[float | None, Field(ge=0.0)]
    gas_m3: Annotated[float | None, Field(ge=0.0)]
    """
    Gas in the bucket, from the gas meter's readings placed at their own time (`gas_ts`, not the poll time): an hourly DSMR 4 value lands in the hour it was measured. Null where no gas reading brackets any part of the bucket (no gas meter, or the hour not read yet).
    """
    water_m3: Annotated[float | None, Field(ge=0.0)]
    """
    Water in the bucket, placed by `water_ts` as gas is by `gas_ts`.
    """
    import_t1_kwh: Annotated[float | None, Field(ge=0.0)]
    """
    Offtake on tariff register 1 (in Belgium day, in the Netherlands low/night) in the bucket, from the register's own counter with the same interpolation and epoch rules as `import_kwh`; null where the meter gives no registers. With two registers, `import_t1_kwh + import_t2_kwh = import_kwh`.
    """
    import_t2_kwh: Annotated[float | None, Field(ge=0.0)]
    """
    Offtake on tariff register 2 in the bucket (see `import_t1_kwh`).
    """
    export_t1_kwh: Annotated[float | None, Field(ge=0.0)]
    """
    Injection on tariff register 1 in the bucket (see `import_t1_kwh`).
    """
    export_t2_kwh: Annotated[float | None, Field(ge=0.0)]
    """
    Injection on tariff register 2 in the bucket (see `import_t1_kwh`).
    """


class Series(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    device_id: Annotated[
        str,
        Field(
            examples=['3c39e7aabbcc'],
            max_length=64,
            min_length=1,
            pattern='^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
        ),
    ]
    """
    Letters, digits, `.`, `_` and `-`; starts with a letter or digit.
    """
    bucket: Literal['1m', '15m', '1h', '1d', '1mo']
    tz: str
    start: AwareDatetime
    """
    Start of the first bucket (`start` rounded down to a bucket boundary).
    """
    end: AwareDatetime
    """
    End of the last bucket (`end` rounded up to a bucket boundary).
    """
    points: Annotated[list[SeriesPoint], Field(max_length=10000)]


class Quarter(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    start: AwareDatetime
    kw: Annotated[float, Field(ge=0.0)]


class CapacityMonth(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    source: Literal['measured', 'meter']
    """
    `measured`: the highest of our own completed quarters. `meter`: the peak the meter itself
    reported (`PUT …/meter-peaks`), used when our quarters of the month are missing or do not cover
    every quarter of it (up to the running quarter, for the month in progress).

    """
    month: Annotated[str, Field(pattern='^20[0-9]{2}-(0[1-9]|1[0-2])$')]
    peak_kw: Annotated[float, Field(ge=0.0)]
    counted_kw: Annotated[float, Field(ge=2.5)]
    """
    The peak as it counts for the average (at least 2.5 kW).
    """


class Capacity(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    device_id: Annotated[
        str,
        Field(
            examples=['3c39e7aabbcc'],
            max_length=64,
            min_length=1,
            pattern='^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
        ),
    ]
    """
    Letters, digits, `.`, `_` and `-`; starts with a letter or digit.
    """
    month: Annotated[str, Field(pattern='^20[0-9]{2}-(0[1-9]|1[0-2])$')]
    tz: str
    peak_kw: Annotated[float | None, Field(ge=0.0)]
    """
    The month's highest quarter-hour demand; null without data in the month.
    """
    peak_start: AwareDatetime | None
    meter_peak_kw: Annotated[float | None, Field(ge=0.0)]
    """
    The meter's own `month_peak_w` (its last value in the month), in kW.
    """
    meter_peak_differs: bool
    """
    True when ours and the meter's differ by more than 2 %.
    """
    top_quarters: Annotated[list[Quarter], Field(max_length=10)]
    months: Annotated[list[CapacityMonth], Field(max_length=12)]
    """
    Each of the last 12 months that has our completed quarters or a peak reported by the meter,
    oldest first.

    """
    rolling_12m_avg_kw: Annotated[float | None, Field(ge=0.0)]
    billable_kw: Annotated[float, Field(ge=2.5)]
    """
    The billing basis; the 2.5 kW floor when there is no data.
    """
    price_eur_per_kw_year: Annotated[float, Field(ge=0.0)]
    cost_eur_per_year: Annotated[float, Field(ge=0.0)]


class Health(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    status: Literal['ok', 'unavailable']
    checks: dict[str, Literal['ok', 'unavailable']]


class ProblemError(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    loc: list[str | int]
    msg: str
    type: str


class Problem(ContractModel):
    """
    RFC 9457 problem details.
    """

    model_config = ConfigDict(
        extra='forbid',
    )
    type: str
    title: str
    status: Annotated[int, Field(ge=400, le=599)]
    detail: str
    instance: str | None = None
    errors: list[ProblemError] | None = None


class CapacityNow(ContractModel):
    """
    The running quarter-hour (README, "Capacity now and the peak guard"). kW to 3 decimals, kWh to 6,
    euros to the cent.

    """

    model_config = ConfigDict(
        extra='forbid',
    )
    device_id: Annotated[
        str,
        Field(
            examples=['3c39e7aabbcc'],
            max_length=64,
            min_length=1,
            pattern='^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
        ),
    ]
    """
    Letters, digits, `.`, `_` and `-`; starts with a letter or digit.
    """
    tz: str
    """
    The zone whose local month `month_peak_kw` is of.
    """
    quarter_start: AwareDatetime
    """
    The running quarter's start, in the offset of `tz`.
    """
    quarter_end: AwareDatetime
    elapsed_s: Annotated[float, Field(ge=0.0, le=900.0)]
    """
    Seconds from `quarter_start` to the newest reading.
    """
    energy_kwh: Annotated[float, Field(ge=0.0)]
    """
    Import so far in the quarter (the counter interpolated at the quarter's start).
    """
    kw_so_far: Annotated[float, Field(ge=0.0)]
    """
    `energy_kwh` × 4: the quarter's demand if nothing more were imported.
    """
    power_w: float
    """
    The newest reading's power (W; negative is export).
    """
    projected_kw: Annotated[float, Field(ge=0.0)]
    """
    The quarter's demand at its end if the present load continues.
    """
    month_peak_kw: Annotated[float | None, Field(ge=0.0)]
    """
    The month's highest completed quarter so far, or the meter's reported peak where ours do not
    cover the month; null when there is neither.

    """
    threshold_kw: Annotated[float, Field(ge=0.0)]
    """
    `cap_kw` when given, else the larger of `month_peak_kw` and 2.5 kW.
    """
    headroom_kw: float
    """
    `threshold_kw` − `projected_kw` (negative: heading over).
    """
    extra_cost_eur: Annotated[float, Field(ge=0.0)]
    """
    What a quarter of `projected_kw` adds to the bill over the 12 months the month counts for:
    max(0, `projected_kw` − max(`month_peak_kw`, 2.5)) × price per kW and year ÷ 12.

    """
    as_of: AwareDatetime
    """
    The newest reading's time (UTC).
    """


class NotificationChannel(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    channel: str
    """
    The Apprise URL with its secrets masked (Apprise's privacy form).
    """
    ok: bool
    attempts: Annotated[int, Field(ge=0)]


class SampleBatch(ContractModel):
    """
    Readings of one device, 1 to 5,000. Unknown properties are ignored.
    """

    device_id: Annotated[
        str,
        Field(
            examples=['3c39e7aabbcc'],
            max_length=64,
            min_length=1,
            pattern='^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
        ),
    ]
    """
    Letters, digits, `.`, `_` and `-`; starts with a letter or digit.
    """
    meter: Meter | None = None
    samples: Annotated[list[Sample], Field(max_length=5000, min_length=1)]
    edge: EdgeState | None = None
    """
    The sending edge's own state (optional: a batch without it, from an older edge, is stored as
    before). Ingest keeps the latest per device with the batch, in the same transaction, and shows
    it on its `/metrics` and in `/v1/devices`, so that an edge nobody can reach (a Pi behind a home
    router) is still watched. A value outside its bounds refuses the batch with 422 as a bad reading
    does; unknown properties are ignored.

    """


class MeterPeaks(ContractModel):
    """
    The meter's own monthly peaks, at most 14 months (13 of history and the running one).
    """

    peaks: Annotated[list[MeterPeak], Field(max_length=14)]


class Notification(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    quarter_start: AwareDatetime
    """
    The quarter the notification is about (UTC).
    """
    kind: Literal['warning', 'result']
    message: str
    claimed_at: AwareDatetime
    sent_at: AwareDatetime | None
    """
    When every channel had answered; null when the notifier stopped before.
    """
    channels: list[NotificationChannel]


class NotificationPage(ContractModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    device_id: str
    notifications: list[Notification]
    next_cursor: Annotated[str | None, Field(pattern='^[0-9]{10}[rw]$')]
    """
    The `cursor` of the next page; null on the last one.
    """
