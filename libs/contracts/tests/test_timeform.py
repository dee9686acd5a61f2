"""timeform writes times exactly as pydantic serialises them, so every answer reads the same."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import AwareDatetime, BaseModel

from p1_contracts.timeform import boundary, instant


class _At(BaseModel):
    t: AwareDatetime


def _pydantic(moment: datetime) -> str:
    return _At(t=moment).model_dump_json()[6:-2]


ZONES = ["UTC", "Europe/Brussels", "Europe/London", "Asia/Kolkata", "America/St_Johns", "Pacific/Kiritimati"]
MOMENTS = [
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 7, 1, 12, 30, 5, 120000, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    datetime(2099, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("zone", ZONES)
def test_boundary_is_pydantics_form_in_the_zone(moment: datetime, zone: str) -> None:
    local = moment.astimezone(ZoneInfo(zone))
    assert boundary(moment, ZoneInfo(zone)) == _pydantic(local)


@pytest.mark.parametrize("moment", MOMENTS)
def test_instant_is_utc_with_z_whatever_the_input_offset(moment: datetime) -> None:
    shifted = moment.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert instant(shifted) == _pydantic(moment) == instant(moment)
    assert instant(shifted).endswith("Z")


def test_by_hand() -> None:
    brussels = ZoneInfo("Europe/Brussels")
    assert instant(datetime(2026, 11, 29, 14, 12, 34, tzinfo=brussels)) == "2026-11-29T13:12:34Z"
    assert boundary(datetime(2026, 11, 28, 23, tzinfo=UTC), brussels) == "2026-11-29T00:00:00+01:00"
    assert instant(datetime(2026, 1, 1, 0, 0, 0, 500, tzinfo=UTC)) == "2026-01-01T00:00:00.000500Z"
