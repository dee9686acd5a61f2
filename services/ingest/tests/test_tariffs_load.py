"""`p1-ingest tariffs load|show` and `p1-ingest prices load` against a real PostgreSQL: a load is all or
nothing, replaces the plans (merges prices by start) and bumps the tariff revision in the same
transaction; mistakes are one line each, exit 2, no traceback."""

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from p1_ingest.cli import main
from p1_servicekit.testing import console_script

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "deploy/tariffs"
PLAN = """\
plans:
  - name: day-night
    devices: ["t-dev"]
    valid_from: "2026-01-01"
    tz: Europe/Brussels
    import_eur_per_kwh: {t1: 0.30, t2: 0.26}
    export_eur_per_kwh: 0.04
    fixed_eur_per_month: 9.50
    capacity_eur_per_kw_year: 51.60
    vat: 0.06
  - name: everyone
    devices: ["*"]
    valid_from: "2026-07-01"
    tz: Europe/Brussels
    import_eur_per_kwh: {dynamic: true, markup: 0.02}
    export_eur_per_kwh: dynamic
    vat: 0.06
"""
# Three mistakes, in two plans.
WRONG = (
    PLAN.replace("t1: 0.30", "t1: 300")
    .replace(
        "Europe/Brussels\n    import_eur_per_kwh: {dynamic",
        "Europe/Bruxelles\n    import_eur_per_kwh: {dynamic",
    )
    .replace("    vat: 0.06\n", "    vat: 6\n", 1)
)
PRICES = "start,end,import_eur_per_kwh,export_eur_per_kwh\n" + "".join(
    f"2026-07-01T{h:02d}:{m:02d}:00+02:00,2026-07-01T{h + (m + 15) // 60:02d}:{(m + 15) % 60:02d}:00+02:00,"
    f"0.{h:02d}{m:02d},0.05\n"
    for h in range(2)
    for m in (0, 15, 30, 45)
)


@pytest.fixture
async def conn(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[asyncpg.Connection]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    c = await asyncpg.connect(database_url)
    yield c
    await c.close()


async def run(*argv: str) -> int:
    """The command in this process (a thread: it runs its own event loop)."""
    return await asyncio.to_thread(main, list(argv))


def command(database_url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """The command as users run it: the console script in a process of its own."""
    return subprocess.run(
        [console_script("p1-ingest"), *argv],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def plans(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM tariff_plans ORDER BY device_id, starts_at")
    return [dict(r) for r in rows]


async def revision(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT revision FROM tariff_revision"))


def without_loaded_at(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "loaded_at"} for r in rows]


async def test_a_load_replaces_every_plan_in_one_transaction(
    conn: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "first.yaml"
    first.write_text(PLAN.replace("t-dev", "gone-dev"))
    assert await run("tariffs", "load", str(first)) == 0
    before = await revision(conn)
    path = tmp_path / "plans.yaml"
    path.write_text(PLAN)
    assert await run("tariffs", "load", str(path)) == 0
    assert "2 plan(s) loaded" in capsys.readouterr().out
    rows = await plans(conn)
    assert [(r["name"], r["device_id"]) for r in rows] == [
        ("everyone", "*"),
        ("day-night", "t-dev"),
    ]  # gone-dev gone
    assert await revision(conn) == before + 1
    assert len({r["loaded_at"] for r in rows}) == 1  # now() of one transaction
    dyn, fixed = rows
    assert [fixed[c] for c in ("import_t1", "import_t2", "export_t1", "export_t2", "import_dynamic")] == [
        Decimal("0.30"),
        Decimal("0.26"),
        Decimal("0.04"),
        Decimal("0.04"),
        False,
    ]
    assert (fixed["fixed_eur_per_month"], fixed["capacity_eur_per_kw_year"]) == (
        Decimal("9.50"),
        Decimal("51.60"),
    )
    # 00:00 in Brussels on 1 January (UTC+1)
    assert fixed["starts_at"] == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert (dyn["import_dynamic"], str(dyn["import_markup"]), dyn["import_t1"]) == (True, "0.02", None)
    assert (dyn["export_dynamic"], dyn["export_t1"]) == (True, None)
    # Loading the same file again: the same rows.
    assert await run("tariffs", "load", str(path)) == 0
    assert without_loaded_at(await plans(conn)) == without_loaded_at(rows)
    assert await revision(conn) == before + 2


async def test_three_mistakes_are_reported_and_nothing_is_stored(
    conn: asyncpg.Connection, database_url: str, tmp_path: Path
) -> None:
    good, wrong = tmp_path / "good.yaml", tmp_path / "wrong.yaml"
    good.write_text(PLAN)
    wrong.write_text(WRONG)
    assert await run("tariffs", "load", str(good)) == 0
    rows, rev = await plans(conn), await revision(conn)
    done = await asyncio.to_thread(command, database_url, "tariffs", "load", str(wrong))
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"p1-ingest: {wrong}: 3 mistake(s), nothing stored:",
        '  plan "day-night" (line 6): import_eur_per_kwh.t1: must be a number between -10 and 10',
        '  plan "day-night" (line 10): vat: must be a number between 0 and 1',
        '  plan "everyone" (line 14): tz: must be an IANA time zone of the pinned tzdata, '
        "e.g. Europe/Brussels",
    ]
    assert await plans(conn) == rows
    assert await revision(conn) == rev


@pytest.mark.parametrize("name", ["flanders-fixed.yaml", "netherlands-fixed.yaml"])
async def test_the_example_files_load(conn: asyncpg.Connection, name: str) -> None:
    assert await run("tariffs", "load", str(EXAMPLES / name)) == 0
    rows = await plans(conn)
    assert rows
    assert {r["device_id"] for r in rows} == {"*"}


async def test_show_says_what_is_in_force(
    conn: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plans.yaml"
    # day-night from 2026-01-01, everyone from 2099-01-01: the first is in force now, the second later.
    path.write_text(PLAN.replace("2026-07-01", "2099-01-01"))
    assert await run("tariffs", "load", str(path)) == 0
    capsys.readouterr()
    assert await run("tariffs", "show", "t-dev") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'device t-dev: plan "day-night" in force now, since 2026-01-01 00:00 Europe/Brussels'
    assert lines[2].split()[:3] == ["now", "day-night", "t-dev"]
    assert "t1 0.3 / t2 0.26 EUR" in lines[2]
    assert lines[2].split()[5] == "2099-01-01T00:00+01:00"  # until the next plan begins
    assert lines[3].split()[:3] == ["later", "everyone", "*"]
    assert "dynamic +0.02" in lines[3]
    assert await run("tariffs", "show", "elsewhere") == 0
    assert capsys.readouterr().out.splitlines()[0] == "device elsewhere: no plan in force now"


async def test_prices_merge_by_start(
    conn: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await conn.execute("DELETE FROM energy_prices")
    path = tmp_path / "prices.csv"
    path.write_text(PRICES)
    rev = await revision(conn)
    assert await run("prices", "load", str(path)) == 0
    assert "8 new, 0 replaced" in capsys.readouterr().out
    assert await conn.fetchval("SELECT count(*) FROM energy_prices") == 8
    # The same file with one price changed: replaced, not added.
    path.write_text(PRICES.replace("0.0015,0.05", "0.1234,"))
    assert await run("prices", "load", str(path)) == 0
    assert "0 new, 8 replaced" in capsys.readouterr().out
    assert await conn.fetchval("SELECT count(*) FROM energy_prices") == 8
    changed = await conn.fetchrow(
        "SELECT import_eur_per_kwh::text AS imp, export_eur_per_kwh FROM energy_prices"
        " WHERE start = '2026-07-01T00:15:00+02:00'"
    )
    assert changed is not None
    assert (changed["imp"], changed["export_eur_per_kwh"]) == ("0.1234", None)
    assert await revision(conn) == rev + 2
    # The example day loads too (other dates: nothing overlaps).
    assert await run("prices", "load", str(EXAMPLES / "prices-example.csv")) == 0
    assert await conn.fetchval("SELECT count(*) FROM energy_prices") == 8 + 96


async def test_bad_prices_store_nothing(
    conn: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await conn.execute("DELETE FROM energy_prices")
    good, bad, overlapping = tmp_path / "good.csv", tmp_path / "bad.csv", tmp_path / "overlap.csv"
    good.write_text(PRICES)
    assert await run("prices", "load", str(good)) == 0
    stored, rev = await conn.fetch("SELECT * FROM energy_prices ORDER BY start"), await revision(conn)
    lines = PRICES.splitlines()
    lines[3] = lines[3].replace("0.0030", "NaN")  # line 4
    lines[6] = lines[6].replace("+02:00,", "+02:00;", 1)  # line 7: three cells
    bad.write_text("\n".join([*lines, "2026-07-02T00:00:00+02:00,2026-07-02T00:15:00+02:00,0.1,0.1"]) + "\n")
    capsys.readouterr()
    assert await run("prices", "load", str(bad)) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"p1-ingest: {bad}: 2 mistake(s), nothing stored:",
        "  line 4, column import_eur_per_kwh: must be a number between -10 and 10, or empty",
        "  line 7: 3 cells, expected 4 (start,end,import_eur_per_kwh,export_eur_per_kwh)",
    ]
    # An hour over stored quarters: each row is right, together they would give a moment two prices.
    overlapping.write_text(
        PRICES.splitlines()[0] + "\n2026-07-01T00:00:00+02:00,2026-07-01T01:00:00+02:00,0.2,\n"
    )
    assert await run("prices", "load", str(overlapping)) == 2
    assert await conn.fetch("SELECT * FROM energy_prices ORDER BY start") == stored
    assert await revision(conn) == rev


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("tariffs", "load", "/nonexistent/plans.yaml"), "p1-ingest: cannot read /nonexistent/plans.yaml: "),
        (("prices", "load", "/nonexistent/prices.csv"), "p1-ingest: cannot read /nonexistent/prices.csv: "),
        (("tariffs", "load", "BINARY"), "p1-ingest: BINARY: 1 mistake(s), nothing stored:"),
        (("prices", "load", "BINARY"), "p1-ingest: BINARY: 1 mistake(s), nothing stored:"),
        (("tariffs", "show", "no such device!"), "p1-ingest: DEVICE is not a device id"),
    ],
)
async def test_hostile_command_lines_get_one_line(
    conn: asyncpg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    expected: str,
) -> None:
    """In this process (a process each costs seconds on a busy machine): an exception escaping main()
    would fail the test, so passing means no traceback; the subprocess test above covers the script."""
    binary = tmp_path / "binary"
    binary.write_bytes(b"\x00\xff\xfe plans: \x80\x81\n" * 100)
    argv = tuple(str(binary) if a == "BINARY" else a for a in argv)
    assert await run(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected.replace("BINARY", str(binary))), err
