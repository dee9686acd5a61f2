"""The exactly-once checks themselves catch a lost, doubled, altered or invented reading."""

from datetime import UTC, datetime

import pytest
from e2e_kit import check_exactly_once, check_v1_exactly_once

SERVED: list[dict[str, object]] = [
    {"n": i + 1, "at": 0.0, "second": 1000 + 2 * i, "power_w": 100 + i, "import_kwh": 1.0, "export_kwh": 0.0}
    for i in range(5)
]


def row(second: int, power: float) -> dict[str, object]:
    ts = datetime.fromtimestamp(second, UTC).isoformat()
    return {"ts": ts, "power_w": power, "import_kwh": 1.0, "export_kwh": 0.0}


GOOD = [row(1000 + 2 * i, 100 + i) for i in range(5)]
BAD = {
    "lost": GOOD[:2] + GOOD[3:],
    "doubled": [*GOOD, GOOD[0]],
    "altered": [*GOOD[:4], row(1008, 1)],
    "invented": [*GOOD, row(2000, 5)],
}


@pytest.mark.parametrize("check", [check_exactly_once, check_v1_exactly_once])
def test_checks_pass_exact_storage(check: object) -> None:
    assert check(SERVED, GOOD) == 5  # type: ignore[operator]


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("check", [check_exactly_once, check_v1_exactly_once])
def test_checks_catch_every_kind_of_error(check: object, case: str) -> None:
    with pytest.raises(AssertionError):
        check(SERVED, BAD[case])  # type: ignore[operator]


def test_only_the_excused_reading_may_be_missing() -> None:
    assert check_exactly_once(SERVED, GOOD[:4], {1008: "never committed"}) == 4
    with pytest.raises(AssertionError):
        check_exactly_once(SERVED, GOOD[1:], {1008: "never committed"})
    assert check_v1_exactly_once(SERVED, GOOD[:4], may_miss_last=True) == 4
    with pytest.raises(AssertionError):
        check_v1_exactly_once(SERVED, GOOD[1:], may_miss_last=True)
