"""rollup_1d (local days, migration 0002) gives the very points that rollup_1h and rollup_15m give, on
every scene: DST days, a meter replacement, sparse readings with a gap, months of capacity data."""

from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from query_scenes import all_meters, utc

from p1_query.buckets import boundaries, source_for
from p1_query.fields import POINT_FIELDS
from p1_query.groups import DailyZone, fetch_group_columns
from p1_query.series import build_points, local_bounds
from p1_query.volumes import fetch_volumes

RANGES = [
    (utc(2025, 1, 1), utc(2026, 12, 31), "1mo"),
    (utc(2025, 1, 1), utc(2026, 12, 31), "1d"),
    (utc(2026, 3, 27, 5), utc(2026, 3, 31, 2), "1d"),  # spring DST, ragged ends
    (utc(2026, 10, 23), utc(2026, 10, 28), "1d"),  # autumn DST
]


@pytest.mark.parametrize("tz", ["Europe/Brussels", "Europe/Amsterdam"])
@pytest.mark.parametrize(("start", "end", "bucket"), RANGES)
async def test_days_and_months_from_rollup_1d_equal_those_from_hours_and_quarters(
    loaded: str, tz: str, start: datetime, end: datetime, bucket: str
) -> None:
    zone = ZoneInfo(tz)
    bounds = boundaries(start, end, bucket, zone)
    conn = await asyncpg.connect(loaded)
    try:
        daily = await DailyZone().get(conn)
        assert daily == ZoneInfo("Europe/Brussels")
        assert source_for(bucket, bounds, daily) == "1d"
        filled = 0
        for meter in all_meters():
            dev = meter.device_id
            points = {
                src: build_points(
                    await fetch_group_columns(conn, dev, src, bounds),
                    await fetch_volumes(conn, dev, src, bounds),
                    bounds,
                    local_bounds(bounds, zone),
                )
                for src in ("1d", "1h", "15m")
            }
            assert points["1d"] == points["1h"] == points["15m"], dev
            filled += sum(1 for samples in points["1d"][POINT_FIELDS.index("samples")] if samples)
        assert filled > 0  # the range holds readings: the comparison is not between empty series
    finally:
        await conn.close()
