"""Query's parameter parsers take exactly what openapi.yaml allows: ``tz`` its enum (with the pinned tzdata's
rules), ``start``/``end`` its pattern and ``format: date-time``; what is left is the one semantic case the
contract lists (an instant of 2000-01-01 or 2099-12-31 that its offset takes outside the range)."""

from datetime import datetime
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from p1_contracts import timerange
from p1_query.buckets import DEFAULT_TZ, parse_instant, parse_tz
from p1_servicekit.errors import Unprocessable
from p1_servicekit.spec import load_spec

PARAMETERS: dict[str, Any] = load_spec()["components"]["parameters"]
TZ: dict[str, Any] = PARAMETERS["Tz"]["schema"]


def test_every_zone_of_the_enum_is_taken_and_nothing_else() -> None:
    for name in TZ["enum"]:
        assert parse_tz(name).key == name
    for name in ("localtime", "posixrules", "Europe", "europe/brussels", "../etc/passwd", "Mars/Base", ""):
        with pytest.raises(Unprocessable) as info:
            parse_tz(name)
        assert [(e.loc, e.type) for e in info.value.errors] == [(("query", "tz"), "enum")]


def test_the_default_zone_is_the_contracts() -> None:
    assert TZ["default"] == DEFAULT_TZ


START = jsonschema_rs.validator_for(PARAMETERS["Start"]["schema"], validate_formats=True)
# Wider than RFC 3339 on every side: any year, separators, lower case, leap seconds, long fractions, offsets
# without a colon or out of bounds, none at all.
LOOSE = (
    r"[0-9]{4}-[01][0-9]-[0-3][0-9][Tt _][0-2][0-9]:[0-6][0-9](:[0-6][0-9]([.,][0-9]{0,8})?)?"
    r"([Zz]|[+-][0-2][0-9](:?[0-6][0-9])?)?"
)


def _taken(value: str) -> tuple[bool, str | None]:
    try:
        parse_instant(value, "start")
    except Unprocessable as exc:
        return False, exc.errors[0].type
    return True, None


@settings(max_examples=400, derandomize=True)
@given(
    st.one_of(st.from_regex(LOOSE, fullmatch=True), st.from_regex(f"^{timerange.INSTANT}$", fullmatch=True))
)
@example("2000-01-01T00:30:00+01:00")
@example("2099-12-31T23:30:00-01:00")
@example("2100-01-01T00:30:00+01:00")
@example("2026-02-29T00:00:00Z")
@example("2026-11-29T00:00:00 01:00")
def test_start_is_taken_exactly_when_the_schema_allows_it(value: str) -> None:
    taken, kind = _taken(value)
    if not START.is_valid(value):
        assert not taken, f"{value!r}: taken, but the schema refuses it"
        return
    if not taken:  # the one case the contract lists: the offset takes it outside the range
        assert kind == "out_of_range", f"{value!r}: schema-valid, refused as {kind}"
        assert not timerange.in_range(datetime.fromisoformat(value))
