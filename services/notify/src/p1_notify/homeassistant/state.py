"""The follower's view of a device (its newest reading, the running quarter, the warning) made into the
``DeviceState`` Home Assistant is sent. The quarter is read by the fields used here only (a Protocol), so
this module depends on no particular class of it (``p1_peakguard.QuarterNow`` fits)."""

import math
from datetime import datetime
from typing import Protocol

from p1_notify.homeassistant.discovery import DeviceState


class QuarterFigures(Protocol):
    @property
    def kw_so_far(self) -> float | None: ...
    @property
    def projected_kw(self) -> float | None: ...
    @property
    def month_peak_kw(self) -> float | None: ...
    @property
    def rolling_12m_avg_kw(self) -> float | None: ...


class Reading(Protocol):
    """``p1_schema.redis.LatestReading``: the reading's time and its Sample fields that have a value."""

    @property
    def ts(self) -> datetime: ...
    @property
    def fields(self) -> dict[str, object]: ...


def _number(value: object) -> float | None:
    # bool is an int: never a reading's figure.
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def device_state(
    device_id: str, reading: Reading, quarter: QuarterFigures | None, warning: bool
) -> DeviceState:
    fields = reading.fields
    return DeviceState(
        device_id=device_id,
        as_of=reading.ts,
        power_w=_number(fields.get("power_w")),
        import_kwh=_number(fields.get("import_kwh")),
        export_kwh=_number(fields.get("export_kwh")),
        kw_so_far=None if quarter is None else _number(quarter.kw_so_far),
        projected_kw=None if quarter is None else _number(quarter.projected_kw),
        month_peak_kw=None if quarter is None else _number(quarter.month_peak_kw),
        # None (unknown) until notify has read the device's past months (``p1_notify.quarter``).
        rolling_12m_avg_kw=None if quarter is None else _number(quarter.rolling_12m_avg_kw),
        peak_warning=warning,
    )
