"""`make demo`'s backfill: the demo meter's past, sent through ingest's own HTTP path (POST /v1/samples).

The first run sends a year: one reading every five minutes, then every second of the last two to three
hours (``p1_edge.simulator.history`` says why that resolution keeps energies and quarter-hour peaks
exact). A later run continues the meter of the newest stored reading: the time the demo was not running
is filled in the same way (at most a year of it is sent). Either way the simulator then starts from the
registers the history ends with (``p1-edge simulate --state``), so the live edge continues one meter with
one counter epoch.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from queue import Queue
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from demo_kit import DemoError

from p1_edge.simulator.flavours import flavour
from p1_edge.simulator.history import COARSE_STEP_S, History, Sample, Span
from p1_edge.simulator.profiles import PROFILES
from p1_edge.simulator.registers import Registers

PROFILE = "family"  # solar, an EV, a heat pump, gas and water (p1_edge.simulator.profiles)
TZ = ZoneInfo("Europe/Brussels")
YEAR_S = 365 * 86400
FINE_S = 2 * 3600  # at least the last two hours at one reading a second
BATCH = 5000  # the contract's most readings per request
NEWEST_SQL = """
SELECT ts, import_t1_kwh, import_t2_kwh, import_kwh, export_t1_kwh, export_t2_kwh, export_kwh,
       gas_m3, gas_ts, water_m3, water_ts
FROM samples WHERE device_id = $1 AND flag IS NULL ORDER BY ts DESC LIMIT 1
"""


@dataclass(frozen=True)
class Sent:
    readings: int
    seconds: float
    first: str | None  # the oldest reading's ts
    last: str | None


def _j(kwh: float | None) -> int:
    """A register shown in kWh (whole Wh) as the joules the model keeps."""
    return round((kwh or 0.0) * 1000) * 3600


def _ml(m3: float | None) -> int:
    return round((m3 or 0.0) * 1000) * 1000


def _tariffs(row: asyncpg.Record, way: str) -> tuple[int, int]:
    """A stored reading's two tariff registers in joules (a meter without them: all on register 1)."""
    if row[f"{way}_t1_kwh"] is None:
        return _j(row[f"{way}_kwh"]), 0
    return _j(row[f"{way}_t1_kwh"]), _j(row[f"{way}_t2_kwh"])


def _registers(row: asyncpg.Record) -> Registers:
    """The registers of a stored reading (a meter without tariff registers counts all on register 1)."""
    second = int(row["ts"].timestamp())
    imp, exp = (_tariffs(row, way) for way in ("import", "export"))
    gas_at = int(row["gas_ts"].timestamp()) if row["gas_ts"] else second
    water_at = int(row["water_ts"].timestamp()) if row["water_ts"] else second
    return Registers(
        second,
        imp,
        exp,
        _ml(row["gas_m3"]),
        _ml(row["water_m3"]),
        ((gas_at, _ml(row["gas_m3"])), (water_at, _ml(row["water_m3"]))),
    )


async def newest_stored(database_url: str, device: str) -> Registers | None:
    """The registers of the device's newest good reading, or None when it has none."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        row = await conn.fetchrow(NEWEST_SQL, device)
    finally:
        await conn.close()
    return None if row is None else _registers(row)


def plan(now: int, newest: Registers | None) -> tuple[History, int]:
    """The history to send and the second from which its readings are sent."""
    year_ago = now - YEAR_S
    fine_from = now - FINE_S - (now - FINE_S) % 3600
    if newest is None:
        start = year_ago - year_ago % COARSE_STEP_S
        emit_from = start
    elif newest.second >= now:
        raise DemoError("the newest stored reading is not in the past (clock set back?): `make demo-reset`")
    else:
        start, emit_from = newest.second, max(newest.second, year_ago)
    history = History(PROFILES[PROFILE], TZ, flavour("be", 5), Span(start, fine_from, now), newest)
    return history, emit_from


Bodies = Queue[bytes | BaseException | None]


def _bodies(device: str, meter: object, readings: Iterable[Sample], out: Bodies) -> None:
    """Encodes the readings in batches of BATCH onto ``out`` (then None, or the error that stopped it)."""
    try:
        it = iter(readings)
        while batch := list(islice(it, BATCH)):
            out.put(json.dumps({"device_id": device, "meter": meter, "samples": batch}).encode())
        out.put(None)
    except BaseException as exc:  # handed to the sending thread, which raises it
        out.put(exc)


@dataclass
class _Ends:
    first: str | None = None
    last: str | None = None

    def track(self, readings: Iterable[Sample]) -> Iterator[Sample]:
        for s in readings:
            self.first = self.first or str(s["ts"])
            self.last = str(s["ts"])
            yield s


def send(client: httpx.Client, device: str, meter: object, readings: Iterable[Sample]) -> Sent:
    """POSTs the readings oldest first, one batch at a time (the next one is encoded meanwhile)."""
    started = time.monotonic()
    queue: Bodies = Queue(maxsize=4)
    ends = _Ends()
    encoder = threading.Thread(target=_bodies, args=(device, meter, ends.track(readings), queue), daemon=True)
    encoder.start()
    total = 0
    while (body := queue.get()) is not None:
        if isinstance(body, BaseException):
            raise body
        r = client.post("/v1/samples", content=body, headers={"Content-Type": "application/json"})
        if r.status_code != 200:
            raise DemoError(f"ingest refused the backfill: {r.status_code} {r.text[:300]}")
        answer = r.json()
        total += int(answer["accepted"]) + int(answer["duplicates"])
    encoder.join(5)
    return Sent(total, time.monotonic() - started, ends.first, ends.last)


def backfill(ingest_url: str, token: str, device: str, database_url: str) -> tuple[Sent, Registers, bool]:
    """Sends the history up to now and what passed meanwhile; returns what was sent, the registers the
    simulator continues from, and whether the device had readings before."""
    newest = asyncio.run(newest_stored(database_url, device))
    history, emit_from = plan(int(time.time()), newest)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=ingest_url, headers=headers, timeout=120) as client:
        sent = send(client, device, history.meter, history.readings(emit_from))
        # the seconds the backfill took, at 1 s, so that the live meter starts where the history ends
        caught_up = send(client, device, history.meter, history.follow(int(time.time())))
    total = Sent(
        sent.readings + caught_up.readings,
        sent.seconds + caught_up.seconds,
        sent.first or caught_up.first,
        caught_up.last or sent.last,
    )
    return total, history.registers(), newest is not None


def describe(sent: Sent, continued: bool) -> str:
    what = "the stored meter continued" if continued else f"a year of the {PROFILE!r} household"
    return (
        f"backfill: {sent.readings:,} readings ({what}: one every 5 minutes, the last hours every second) "
        f"through ingest in {sent.seconds:.1f} s, {sent.first} … {sent.last}"
    )
