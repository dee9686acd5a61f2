"""``p1-ingest serve | migrate | maintain | rebuild DEVICE… | backup PATH | restore PATH | tariffs load FILE |
tariffs show [DEVICE] | prices load FILE.csv``.

A configuration error is one line per problem naming the variable (exit 2, ``p1_config.errors``); a
database that cannot be reached, or a backup or restore that cannot be done, is one line with any URL's
password masked (exit 1). A plan or prices file with mistakes is one line per mistake, nothing stored
(exit 2). None prints a value or a traceback."""

import argparse
import asyncio
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Final, TypeVar

import asyncpg

from p1_config.errors import run_command
from p1_config.logging import configured
from p1_config.redact import describe_error, redact
from p1_servicekit.serve import add_serve_command, serve_command
from p1_servicekit.settings import ServiceSettings

PROG: Final = "p1-ingest"
T = TypeVar("T")
# Failures of a one-shot command's connection: unreachable, refused, timed out, wrong credentials.
_CONNECT_FAILURES: Final = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="p1-telemetry ingest service")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_command(sub, "ingest", 8001)
    sub.add_parser("migrate", help="apply pending schema migrations (safe to run concurrently)")
    sub.add_parser(
        "maintain",
        help="raw-data retention (RAW_RETENTION_DAYS): partitions ahead and old ones dropped on plain "
        "PostgreSQL; on TimescaleDB the retention policy set and both policies (retention, compression) run",
    )
    p_rebuild = sub.add_parser(
        "rebuild", help="rebuild devices' counter epochs, integrity flags and rollups from their raw readings"
    )
    p_rebuild.add_argument("device_ids", nargs="+", metavar="DEVICE")
    p_backup = sub.add_parser(
        "backup",
        help="the whole database, consistent while ingest writes, into a pg_dump archive (custom format): "
        "PATH is a new file, or a directory where p1-<UTC time>.dump is written",
    )
    p_backup.add_argument("path", type=Path, metavar="PATH")
    p_backup.add_argument(
        "--keep-days",
        type=int,
        metavar="N",
        help="PATH a directory: afterwards remove its backups taken more than N days ago",
    )
    p_restore = sub.add_parser(
        "restore",
        help="a backup into DATABASE_URL's database, which must be empty (TimescaleDB: same version)",
    )
    p_restore.add_argument("path", type=Path, metavar="PATH")
    _add_tariff_commands(sub)
    return parser


def _add_tariff_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    tariffs = sub.add_parser("tariffs", help="tariff plans (README, Tariffs)").add_subparsers(
        dest="tariffs_command", metavar="{load,show}", required=True
    )
    load = tariffs.add_parser(
        "load", help="validate a plan file (YAML) and replace every stored plan by its plans, at once"
    )
    load.add_argument("file", type=Path, metavar="FILE")
    show = tariffs.add_parser("show", help="the stored plans: which is in force now and from when")
    show.add_argument("device_id", nargs="?", metavar="DEVICE")
    prices = sub.add_parser("prices", help="dynamic (market) prices").add_subparsers(
        dest="prices_command", metavar="{load}", required=True
    )
    p_load = prices.add_parser(
        "load", help="merge a CSV of prices (start,end,import_eur_per_kwh,export_eur_per_kwh) by start"
    )
    p_load.add_argument("file", type=Path, metavar="FILE.csv")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {
        "serve": lambda: _serve(args),
        "maintain": _maintain,
        "rebuild": lambda: _rebuild(args.device_ids),
        "migrate": _migrate,
        "backup": lambda: _backup(args.path, args.keep_days),
        "restore": lambda: _restore(args.path),
        "tariffs": lambda: _tariffs(args),
        "prices": lambda: _load_prices(args.file),
    }
    return run_command(PROG, commands[args.command])


def _serve(args: argparse.Namespace) -> int:
    from p1_ingest.settings import IngestSettings

    settings = configured(IngestSettings)  # fail fast, before uvicorn starts workers
    return serve_command(args, "p1_ingest.app:app_from_env", settings.log_level)


def _maintain() -> int:
    from p1_ingest.maintain import maintain
    from p1_ingest.settings import MaintainSettings

    settings = configured(MaintainSettings)
    report = _run_on_database(settings, maintain(settings.database_url, settings.raw_retention_days))
    if report is None:
        return 1
    print(f"{PROG}: maintenance done; {report.summary()}")
    for warning in report.warnings():
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    return 0


def _migrate() -> int:
    from p1_ingest.rebuild import migrate
    from p1_ingest.settings import IntegritySettings

    # MAX_POWER_W: the rebuilds a migration queues judge readings by it.
    settings = configured(IntegritySettings)
    applied = _run_on_database(settings, migrate(settings.database_url, limits=settings.limits))
    if applied is None:
        return 1
    print(f"{PROG}: {len(applied)} migration(s) applied: {', '.join(applied) or 'none pending'}")
    return 0


def _rebuild(device_ids: list[str]) -> int:
    from p1_ingest.rebuild import rebuild_devices
    from p1_ingest.settings import IntegritySettings

    settings = configured(IntegritySettings)
    reports = _run_on_database(settings, rebuild_devices(settings.database_url, device_ids, settings.limits))
    if reports is None:
        return 1
    for r in reports:
        print(f"{PROG}: {r.device_id}: {r.outcome}, {r.readings} reading(s) replayed")
    return 0


def _backup(path: Path, keep_days: int | None) -> int:
    from p1_ingest.backup import backup

    if keep_days is not None and keep_days < 1:
        print(f"{PROG}: --keep-days must be at least 1", file=sys.stderr)
        return 2
    settings = configured(ServiceSettings)
    report = _run_tool_command(settings, backup(settings.database_url, path, keep_days))
    if report is None:
        return 1
    for warning in report.warnings:
        print(f"{PROG}: {warning}", file=sys.stderr)
    for line in report.lines():
        print(f"{PROG}: {line}")
    return 0


def _restore(path: Path) -> int:
    from p1_ingest.restore import restore

    settings = configured(ServiceSettings)
    summary = _run_tool_command(settings, restore(settings.database_url, path))
    if summary is None:
        return 1
    print(f"{PROG}: restored {path} into {redact(settings.database_url)}: {summary.line()}")
    return 0


def _tariffs(args: argparse.Namespace) -> int:
    if args.tariffs_command == "show":
        return _show_tariffs(args.device_id)
    return _load_tariffs(args.file)


def _mistakes(what: str, problems: list[str]) -> int:
    print(f"{PROG}: {what}: {len(problems)} mistake(s), nothing stored:", file=sys.stderr)
    for line in problems:
        print(f"  {line}", file=sys.stderr)
    return 2


def _load_tariffs(path: Path) -> int:
    from p1_ingest.tariffs_store import replace_plans
    from p1_tariffs.plans import PlanFileError, read_plan_file

    settings = configured(ServiceSettings)
    try:
        plan_file = read_plan_file(path)
    except OSError as exc:
        print(f"{PROG}: cannot read {path}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    except PlanFileError as exc:
        return _mistakes(str(path), exc.problems)
    rows = plan_file.rows()
    loaded = _run_on_database(settings, replace_plans(settings.database_url, rows))
    if loaded is None:
        return 1
    devices = sorted({r.device_id for r in rows})
    print(
        f"{PROG}: {len(plan_file.plans)} plan(s) loaded from {path} as {loaded.rows} row(s) for "
        f"{', '.join(devices)} (replacing {loaded.replaced}); tariff revision {loaded.revision}"
    )
    return 0


def _show_tariffs(device_id: str | None) -> int:
    from datetime import UTC, datetime

    from p1_contracts.patterns import is_device_id
    from p1_ingest.tariffs_show import show
    from p1_ingest.tariffs_store import stored_plans

    if device_id is not None and not is_device_id(device_id):
        print(f"{PROG}: DEVICE is not a device id", file=sys.stderr)
        return 2
    settings = configured(ServiceSettings)
    plans = _run_on_database(settings, stored_plans(settings.database_url))
    if plans is None:
        return 1
    for line in show(plans, device_id, datetime.now(UTC)):
        print(line)
    return 0


def _load_prices(path: Path) -> int:
    from p1_ingest.tariffs_store import PricesError, load_prices

    settings = configured(ServiceSettings)
    try:
        text = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        print(f"{PROG}: cannot read {path}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    try:
        with text:
            loaded = _run_on_database(settings, load_prices(settings.database_url, text))
    except PricesError as exc:
        return _mistakes(str(path), exc.problems)
    except OSError as exc:  # a read error mid-file (the database's own are caught above)
        print(f"{PROG}: cannot read {path}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    if loaded is None:
        return 1
    span = (
        f" from {loaded.first.isoformat()} to {loaded.last.isoformat()}"
        if loaded.first and loaded.last
        else ""
    )
    print(
        f"{PROG}: {loaded.inserted + loaded.replaced} price interval(s) loaded from {path}{span}: "
        f"{loaded.inserted} new, {loaded.replaced} replaced; tariff revision {loaded.revision}"
    )
    return 0


def _run_tool_command(settings: ServiceSettings, work: Awaitable[T]) -> T | None:
    """``_run_on_database`` for backup and restore: their own failures are one line too."""
    from p1_ingest.pgtools import ToolError

    try:
        return _run_on_database(settings, work)
    except ToolError as exc:
        print(f"{PROG}: {redact(str(exc))}", file=sys.stderr)
        return None


def _run_on_database(settings: ServiceSettings, work: Awaitable[T]) -> T | None:
    """Runs a one-shot command's work; None (after one line on stderr) when the database fails it."""

    async def run() -> T:
        return await work

    try:
        return asyncio.run(run())
    except _CONNECT_FAILURES as exc:
        print(
            f"{PROG}: database {redact(settings.database_url)} failed: {describe_error(exc)}",
            file=sys.stderr,
        )
        return None
