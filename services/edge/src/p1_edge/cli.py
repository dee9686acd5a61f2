"""``p1-edge``: run · status · discover · simulate · pair."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from p1_config.errors import run_command
from p1_config.logging import configured
from p1_edge.settings import EdgeSettings

PROG = "p1-edge"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="poll the meter, spool and upload (configured by environment)")
    sub.add_parser("status", help="spool depth, oldest reading, last upload and error (SPOOL_PATH)")
    discover = sub.add_parser("discover", help="list the HomeWizard devices announcing themselves (mDNS)")
    discover.add_argument("--wait", type=float, default=3.0, help="seconds to listen (default 3)")
    _simulate_arguments(sub.add_parser("simulate", help="serve a simulated HomeWizard P1 meter"))
    pair = sub.add_parser("pair", help="obtain a v2 token from the meter (press its button)")
    pair.add_argument("--host", default=None, help="meter host[:port] (default: P1_HOST)")
    pair.add_argument("--name", default="p1-edge")
    pair.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the button")
    return parser


def _simulate_arguments(sim: argparse.ArgumentParser) -> None:
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    sim.add_argument("--api", choices=("v1", "v2"), default="v1")
    sim.add_argument("--profile", default="home")
    sim.add_argument("--serial", default=None)
    sim.add_argument("--token", default=None, help="v2 bearer token (default: random, printed)")
    sim.add_argument("--ca-out", type=Path, default=None, help="v2: write the simulator's CA here")
    sim.add_argument("--country", choices=("be", "nl"), default=None, help="the smart meter's country")
    sim.add_argument("--dsmr", type=int, choices=(4, 5), default=5, help="4: a telegram every 10 s")
    sim.add_argument("--start", type=_aware_time, default=None, help="the meter's time at start (ISO 8601)")
    sim.add_argument("--speed", type=float, default=1.0, help="meter seconds per real second (0: frozen)")
    sim.add_argument(
        "--installed", type=_aware_time, default=None, help="when the meter was installed (default: long ago)"
    )
    sim.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=("timeout", "api_disabled", "malformed"),
        help="start with this fault switched on (repeatable; POST /_sim/faults toggles at run time)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(PROG, lambda: _command(args))


def _command(args: argparse.Namespace) -> int:
    """Runs the command with the settings read once; raises ConfigError (reported by ``run_command``)."""
    settings = configured(EdgeSettings)
    if args.command == "run":
        return _run(settings)
    if args.command == "status":
        return _status(settings)
    if args.command == "discover":
        return asyncio.run(_discover(args.wait, settings))
    if args.command == "simulate":
        return asyncio.run(_simulate(args))
    return asyncio.run(_pair(args, settings))


def _run(settings: EdgeSettings) -> int:
    settings.check_for_run()
    from p1_edge.daemon import Edge

    async def go() -> int:
        return await Edge(settings).run()

    return asyncio.run(go())


def _ago(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    when = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
    return f"{when} ({max(0.0, time.time() - epoch):.0f} s ago)"


def _status(settings: EdgeSettings) -> int:
    from p1_edge.spoolfile import stats_in_file

    stats = stats_in_file(settings.spool_path)
    if stats is None:
        print(f"p1-edge status: no spool at {settings.spool_path} (set SPOOL_PATH)", file=sys.stderr)
        return 1
    print(f"spool:             {settings.spool_path}")
    print(f"readings waiting:  {stats.depth}")
    print(f"oldest reading:    {_ago(stats.oldest_ts) if stats.oldest_ts else 'none'}")
    print(f"quarantined:       {stats.quarantined}")
    print(f"dropped (full):    {stats.dropped_total}")
    print(f"last upload:       {_ago(stats.last_upload_at)}")
    error = "none" if stats.last_error is None else f"{stats.last_error} — {_ago(stats.last_error_at)}"
    print(f"last error:        {error}")
    return 0


async def _discover(wait_s: float, settings: EdgeSettings) -> int:
    """Lists what answers on mDNS and which P1 meter `p1-edge run` would read (exit 1: no P1 meter)."""
    from p1_edge.meter.discovery import Discovery, choose
    from p1_edge.meter.errors import MeterError

    discovery = Discovery()
    await discovery.start()
    try:
        await asyncio.sleep(min(max(wait_s, 0.5), 60.0))
    finally:
        await discovery.close()
    found = sorted(discovery.found, key=lambda a: (a.product_type, a.serial))
    try:
        chosen: str | None = choose(found, settings.p1_serial, settings.device_id).name
        verdict = "p1-edge run reads the meter marked *"
    except MeterError as exc:
        chosen, verdict = None, f"p1-edge run reads none: {exc}"
    print(f"  {'serial':<14}{'product':<10}{'address':<24}{'local API':<11}name")
    for a in found:
        api = "on" if a.api_enabled else "off"
        mark = "*" if a.name == chosen else " "
        print(f"{mark} {a.serial:<14}{a.product_type:<10}{a.host:<24}{api:<11}{a.name}")
    print(f"{len(found)} device(s) in {wait_s:g} s; {verdict}")
    return 0 if any(a.is_p1 for a in found) else 1


def _aware_time(text: str) -> datetime:
    """An ISO 8601 time with its offset (``2026-10-25T02:59:30+02:00``)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset")
    return value


async def _simulate(args: argparse.Namespace) -> int:
    from p1_edge.simulator.profiles import PROFILES
    from p1_edge.simulator.server import Simulator

    if args.profile not in PROFILES:
        print(f"unknown profile {args.profile!r}; choose from {', '.join(PROFILES)}", file=sys.stderr)
        return 2
    try:
        sim = Simulator(
            api=args.api,
            profile=args.profile,
            host=args.host,
            port=args.port,
            serial=args.serial,
            token=args.token,
            country=args.country,
            dsmr=args.dsmr,
            start=args.start,
            speed=args.speed,
            installed=args.installed,
        )
    except ValueError as exc:
        print(f"p1-edge simulate: {exc}", file=sys.stderr)
        return 2
    for fault in args.fault:
        setattr(sim.faults, fault, True)
    await sim.start()
    scheme = "http" if args.api == "v1" else "https"
    print(
        f"simulating a HomeWizard P1 (API {args.api}, profile {args.profile}, serial {sim.serial}, "
        f"meter {sim.model.flavour.name}) "
        f"on {scheme}://{args.host}:{sim.port}",
        flush=True,
    )
    if args.api == "v2":
        assert sim.ca_file is not None
        ca = sim.ca_file
        if args.ca_out is not None:
            shutil.copyfile(sim.ca_file, args.ca_out)
            ca = args.ca_out
        print(f"v2: P1_TOKEN={sim.token} P1_CA_FILE={ca}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.close()
    return 0


async def _pair(args: argparse.Namespace, settings: EdgeSettings) -> int:
    from p1_edge.meter.errors import MeterError
    from p1_edge.meter.pair import pair

    host = args.host or settings.p1_host
    if not host:
        print("p1-edge pair: give --host or set P1_HOST", file=sys.stderr)
        return 2
    try:
        token = await pair(
            host,
            args.name,
            wait_s=args.wait,
            ca_file=str(settings.p1_ca_file) if settings.p1_ca_file else None,
            insecure=settings.p1_insecure,
            say=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except (MeterError, TimeoutError) as exc:
        print(f"p1-edge pair: {exc}", file=sys.stderr)
        return 1
    print(f"P1_TOKEN={token}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
