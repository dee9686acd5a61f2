"""The contract says exactly what the services take: the tz enum is the pinned tzdata's zones, every instant
has timerange's pattern, and the rejections a schema-valid request may still get are listed, well formed."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from p1_contracts import timerange, zones

ROOT = Path(__file__).resolve().parents[3]
SPEC: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text())
PARAMETERS = SPEC["components"]["parameters"]
SAMPLE = SPEC["components"]["schemas"]["Sample"]["properties"]


def test_the_tz_enum_is_the_pinned_tzdatas_zones() -> None:
    assert PARAMETERS["Tz"]["schema"]["enum"] == sorted(zones.names())
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts/tz_enum.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_default_zone_is_in_the_enum() -> None:
    schema = PARAMETERS["Tz"]["schema"]
    assert schema["default"] in schema["enum"]


def test_names_are_what_zoneinfo_finds_in_the_package_alone() -> None:
    """``names()`` reads the package's own list; zoneinfo, with the host out of its path, agrees."""
    code = "import zoneinfo; zoneinfo.reset_tzpath(to=()); print(*sorted(zoneinfo.available_timezones()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == sorted(zones.names())
    assert "Europe/Brussels" in zones.names()
    assert "localtime" not in zones.names()  # a host file (Debian), not a zone of tzdata


@pytest.mark.parametrize(("pinned", "offset"), [(False, "9:00:00"), (True, "1:00:00")])
def test_use_pinned_data_takes_the_host_out_of_the_path(tmp_path: Path, pinned: bool, offset: str) -> None:
    """A host whose Europe/Brussels is Tokyo's rules: zoneinfo reads the host first, unless pinned."""
    (tmp_path / "Europe").mkdir()
    (tmp_path / "Europe" / "Brussels").write_bytes(Path("/usr/share/zoneinfo/Asia/Tokyo").read_bytes())
    code = (
        "import datetime, zoneinfo; from p1_contracts import zones; "
        f"{'zones.use_pinned_data(); ' if pinned else ''}"
        "print(datetime.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo('Europe/Brussels')).utcoffset())"
    )
    env = {"PYTHONTZPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == offset


def _instant_schemas() -> dict[str, dict[str, Any]]:
    found = {name: PARAMETERS[name]["schema"] for name in ("Start", "End")}
    found |= {f"Sample.{k}": v for k, v in SAMPLE.items() if v.get("format") == "date-time"}
    return found


def test_every_instant_the_services_take_has_timeranges_pattern() -> None:
    schemas = _instant_schemas()
    assert set(schemas) == {
        "Start",
        "End",
        "Sample.ts",
        "Sample.month_peak_ts",
        "Sample.gas_ts",
        "Sample.water_ts",
    }
    for name, schema in schemas.items():
        assert schema["pattern"] == f"^{timerange.INSTANT}$", name


VALID = jsonschema_rs.validator_for(PARAMETERS["Start"]["schema"], validate_formats=True)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2026-11-29T00:00:00+01:00", True),
        ("2026-11-29T00:00:00Z", True),
        ("2026-11-29T00:00:00.123456-03:30", True),
        ("2000-01-01T00:00:00Z", True),
        ("2099-12-31T23:59:59.999999Z", True),
        ("2024-02-29T00:00:00Z", True),
        ("2000-01-01T00:30:00+01:00", True),  # valid by the schema, 1999 in UTC: the listed semantic case
        ("1999-12-31T23:59:59Z", False),
        ("2100-01-01T00:00:00Z", False),
        ("2026-02-29T00:00:00Z", False),  # format: no such day
        ("2026-11-29t00:00:00z", False),  # RFC 3339 allows it, Python's fromisoformat does not
        ("2026-12-31T23:59:60Z", False),  # a leap second: RFC 3339 allows it, Python does not
        ("2026-11-29T00:00:00.1234567Z", False),
        ("2026-11-29 00:00:00Z", False),
        ("2026-11-29T00:00:00", False),
        ("2026-11-29T00:00:00Z\n", False),
        ("٢٠٢٦-11-29T00:00:00Z", False),
    ],
)
def test_the_instant_schema_reads_as_intended(value: str, valid: bool) -> None:
    assert VALID.is_valid(value) == valid
    assert (timerange.INSTANT_RE.fullmatch(value) is not None) == (valid or value == "2026-02-29T00:00:00Z")


def _operations() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", op)
        for path, item in SPEC["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]


def test_semantic_rejections_are_documented_statuses_with_a_type_and_a_field() -> None:
    listed = 0
    for label, op in _operations():
        for entry in op.get("x-semantic-rejections", []):
            listed += 1
            assert str(entry["status"]) in op["responses"], (label, entry)
            assert entry["description"].strip(), (label, entry)
            if entry["status"] == 422:
                assert isinstance(entry["type"], str), (label, entry)
                assert entry["type"], (label, entry)
                assert entry["loc"][0] in ("query", "path", "body"), (label, entry)
            else:
                assert "type" not in entry, (label, entry)
                assert "loc" not in entry, (label, entry)
    assert listed >= 10
