"""The plan file: what a valid one makes, and every mistake of a wrong one named (plan, field, line)."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from p1_tariffs.plans import MAX_FILE_BYTES, NAME_RE, PlanFileError, parse_plan_file, read_plan_file

ROOT = Path(__file__).resolve().parents[3]
MIGRATION = ROOT / "libs/schema/src/p1_schema/migrations/0010_tariffs.sql"

DEVICE_MISTAKE = 'devices[0]: must be a device id (pattern ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$) or "*"'
CAPACITY = "capacity_eur_per_kw_year: 51.60"
ISSUE_EXAMPLE = """\
plans:
  - name: fixed-2026
    devices: ["demo"]          # or ["*"]
    valid_from: "2026-01-01"   # local date in tz
    tz: Europe/Brussels
    import_eur_per_kwh: {t1: 0.30, t2: 0.26}   # or 0.28, or dynamic
    export_eur_per_kwh: 0.04
    fixed_eur_per_month: 9.50
    capacity_eur_per_kw_year: 51.60
    vat: 0.06
"""


def mistakes(text: str) -> list[str]:
    with pytest.raises(PlanFileError) as caught:
        parse_plan_file(text)
    return caught.value.problems


def test_the_issue_example_makes_one_row() -> None:
    (row,) = parse_plan_file(ISSUE_EXAMPLE).rows()
    assert (row.name, row.device_id, row.valid_from, row.tz) == (
        "fixed-2026",
        "demo",
        date(2026, 1, 1),
        "Europe/Brussels",
    )
    # 00:00 in Brussels on 1 January (UTC+1) is 23:00 UTC the day before
    assert row.starts_at == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert (row.import_t1, row.import_t2, row.import_dynamic) == (Decimal("0.30"), Decimal("0.26"), False)
    # one number: both registers
    assert (row.export_t1, row.export_t2, row.export_dynamic) == (Decimal("0.04"), Decimal("0.04"), False)
    assert row.fixed_eur_per_month == Decimal("9.50")
    assert row.capacity_eur_per_kw_year == Decimal("51.60")
    assert (row.grid_operator, row.vat, row.currency) == (None, Decimal("0.06"), "EUR")


def test_dynamic_forms_and_operator_and_several_devices() -> None:
    text = ISSUE_EXAMPLE.replace('["demo"]', '["a", "b"]')
    text = text.replace("{t1: 0.30, t2: 0.26}", "dynamic").replace("0.04", "{dynamic: true, markup: -0.015}")
    text = text.replace("capacity_eur_per_kw_year: 51.60", "grid_operator: fluvius-imewo")
    rows = parse_plan_file(text).rows()
    assert [r.device_id for r in rows] == ["a", "b"]
    row = rows[0]
    assert (row.import_t1, row.import_t2, row.import_dynamic) == (None, None, True)
    assert row.import_markup == 0
    assert (row.export_t1, row.export_dynamic, row.export_markup) == (None, True, Decimal("-0.015"))
    assert (row.capacity_eur_per_kw_year, row.grid_operator) == (None, "fluvius-imewo")


def test_three_mistakes_are_all_named() -> None:
    text = ISSUE_EXAMPLE.replace("t1: 0.30", "t1: 30").replace("Europe/Brussels", "Europe/Gent")
    text = text.replace("vat: 0.06", "vat: six")
    assert mistakes(text) == [
        'plan "fixed-2026" (line 5): tz: must be an IANA time zone of the pinned tzdata, '
        "e.g. Europe/Brussels",
        'plan "fixed-2026" (line 6): import_eur_per_kwh.t1: must be a number between -10 and 10',
        'plan "fixed-2026" (line 10): vat: must be a number between 0 and 1',
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "0.04",
            "1e999",
            "export_eur_per_kwh: must be a number, {t1: …, t2: …}, dynamic or",
        ),  # a string in YAML 1.1
        ("0.04", "1.0e+999", "export_eur_per_kwh: must be a number between -10 and 10"),
        ("0.04", ".nan", "export_eur_per_kwh: must be a number between -10 and 10"),
        ("0.04", "123456789012345678901234567890", "export_eur_per_kwh: must be a number between -10 and 10"),
        ("0.04", '"0.04"', "export_eur_per_kwh: must be a number, {t1"),
        ("0.04", "true", "export_eur_per_kwh: must be a number, {t1"),
        ("0.04", "[0.04]", "export_eur_per_kwh: must be a number, {t1"),
        ("0.04", "{t1: 0.04}", "export_eur_per_kwh: needs both t1 and t2"),
        ("0.04", "{t1: 0.04, t2: 0.03, markup: 0.01}", "export_eur_per_kwh: a markup goes with dynamic only"),
        ("0.04", "{dynamic: true, t1: 0.04}", "export_eur_per_kwh: dynamic takes no t1/t2"),
        ("0.04", "{dynamic: yes please}", "export_eur_per_kwh.dynamic: must be true or false"),
        ("9.50", "-1", "fixed_eur_per_month: must be a number between 0 and 100000"),
        ("0.06", "1.5", "vat: must be a number between 0 and 1"),
        ('"2026-01-01"', "2026-13-01", "valid_from: must be a local date YYYY-MM-DD"),
        ('"2026-01-01"', '"1999-12-31"', "valid_from: must be a local date YYYY-MM-DD"),
        ('"2026-01-01"', "20260101", "valid_from: must be a local date YYYY-MM-DD"),
        ("Europe/Brussels", "Mars/Olympus", "tz: must be an IANA time zone"),
        ("Europe/Brussels", "localtime", "tz: must be an IANA time zone"),
        (
            '["demo"]',
            '["de mo"]',
            'devices[0]: must be a device id (pattern ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$) or "*"',
        ),
        ('["demo"]', '["demo%"]', "devices[0]: must be a device id"),
        ('["demo"]', '["*demo"]', "devices[0]: must be a device id"),
        ('["demo"]', '["dev\\nice"]', "devices[0]: must be a device id"),
        ('["demo"]', "[]", "devices: must not be empty"),
        ('["demo"]', '"demo"', "devices: must be a list"),
        ('["demo"]', '["*", "demo"]', 'devices: "*" (every device) stands alone'),
        ('["demo"]', '["demo", "demo"]', "devices: a device is named twice"),
        (
            "capacity_eur_per_kw_year: 51.60",
            "grid_operator: fluvius-mars",
            "grid_operator: must be one of fluvius-",
        ),
        (
            "capacity_eur_per_kw_year: 51.60",
            "capacity_eur_per_kw_year: 51.60\n    grid_operator: fluvius-west",
            "give capacity_eur_per_kw_year or grid_operator, not both",
        ),
        (
            "vat: 0.06",
            "vat: 0.06\n    currency: eur",
            "currency: must be a currency code of three capital letters",
        ),
        ("vat: 0.06", "vat: 0.06\n    vat_rate: 0.06", "vat_rate: unknown field"),
        ("vat: 0.06", "vat: 0.07\n    vat: 0.06", "vat: given twice"),
        ("    vat: 0.06\n", "", "vat: is required"),
    ],
)
def test_hostile_values_are_refused_clearly(old: str, new: str, expected: str) -> None:
    assert old in ISSUE_EXAMPLE
    found = mistakes(ISSUE_EXAMPLE.replace(old, new))
    assert len(found) == 1, found
    assert found[0].startswith('plan "fixed-2026" (line '), found
    assert expected in found[0], found


def test_a_nameless_plan_is_named_by_its_position() -> None:
    text = ISSUE_EXAMPLE + "  - name: 'no good!'\n    devices: 7\n"
    found = mistakes(text)
    assert found[0] == (
        "plan #2 (line 11): name: must be 1 to 64 letters, digits, '.', '_', '-' or spaces, "
        "starting with a letter or digit"
    )
    assert "plan #2 (line 12): devices: must be a list" in found
    assert "plan #2 (line 11): tz: is required" in found


def test_mistakes_between_plans() -> None:
    second = ISSUE_EXAMPLE.split("\n", 1)[1]  # the same plan again, from line 11 on
    assert mistakes(ISSUE_EXAMPLE + second) == [
        'plan "fixed-2026" (line 11): name: the same name as the plan at line 2',
        'plan "fixed-2026" (line 11): valid_from: device demo has plan "fixed-2026" (line 2) '
        "from 2026-01-01 (2025-12-31 23:00 UTC) too",
    ]
    # Two dates whose midnights are one instant (zones 24 h apart): which plan would be in force?
    east = second.replace("fixed-2026", "east").replace('"2026-01-01"', '"2026-01-03"')
    east = east.replace("Europe/Brussels", "Pacific/Apia")  # UTC+13: 01-03 00:00 is 01-02 11:00 UTC
    west = second.replace("fixed-2026", "west").replace('"2026-01-01"', '"2026-01-02"')
    west = west.replace("Europe/Brussels", "Pacific/Pago_Pago")  # UTC-11: 01-02 00:00 is 01-02 11:00 UTC
    assert mistakes(ISSUE_EXAMPLE + east + west) == [
        'plan "west" (line 20): valid_from: device demo has plan "east" (line 11) from 2026-01-02 '
        "(2026-01-02 11:00 UTC) too"
    ]
    # A plan for every device and one for a named device may share a date (the named one wins there).
    other = second.replace("fixed-2026", "everyone").replace('["demo"]', '["*"]')
    assert len(parse_plan_file(ISSUE_EXAMPLE + other).rows()) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plans: [\n", "line 2: not valid YAML"),
        ("- a\n- b\n", "the file must be a mapping with a non-empty list `plans:`"),
        ("plans: []\n", "the file must be a mapping with a non-empty list `plans:`"),
        ("", "the file must be a mapping with a non-empty list `plans:`"),
        ("plans:\n  - &p {name: a}\n  - *p\n", "YAML aliases (*name) are not accepted in a plan file"),
        ("plans:\n  - 1\nextra: 2\n", "line 3: unknown top-level field 'extra'"),
        ("plans:\n  - !!python/object:os.system {}\n", "not valid YAML"),
        ("plans: \x00\n", "not valid YAML"),
        ("plans: " + "[" * 50000 + "\n", "line 1: nested more than 8 levels deep"),
    ],
)
def test_files_that_are_not_plan_files(text: str, expected: str) -> None:
    assert expected in mistakes(text)[0]


def test_file_bounds(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(PlanFileError, match="larger than"):
        read_plan_file(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"plans: [\xe9]\n")
    with pytest.raises(PlanFileError, match="not UTF-8"):
        read_plan_file(latin)


def test_the_name_rule_is_the_tables() -> None:
    check = re.search(r"CHECK \(name ~ '([^']+)'\)", MIGRATION.read_text(encoding="utf-8"))
    assert check is not None
    assert check.group(1) == f"^{NAME_RE.pattern}$"


@pytest.mark.parametrize("name", ["flanders-fixed.yaml", "netherlands-fixed.yaml"])
def test_the_example_files_are_valid(name: str) -> None:
    rows = read_plan_file(ROOT / "deploy/tariffs" / name).rows()
    assert rows
    assert all(r.device_id == "*" for r in rows)
    assert {r.vat for r in rows} == ({Decimal("0.06")} if name.startswith("flanders") else {Decimal("0.21")})
