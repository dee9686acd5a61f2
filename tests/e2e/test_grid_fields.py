"""Issue 13.6, the whole pipeline: what the meter says of the grid and of its gas and water meters goes
simulator → edge (mapping, spool) → ingest → PostgreSQL → query's realtime and raw export (CSV and
NDJSON), with values computed by hand from the simulator's rules."""

import csv
import io
import math
from datetime import datetime, timedelta

import pytest
from e2e_kit import Stack, StackFactory

from p1_servicekit.testing import wait_until

pytestmark = pytest.mark.timeout(90)

COUNTS = (
    "power_fail_count",
    "long_power_fail_count",
    *(f"voltage_{kind}_l{n}_count" for kind in ("sag", "swell") for n in (1, 2, 3)),
)
# The simulator's meter starts with 6 power failures (3 long), sags 3/2/2 and swells 1/1/1
# (simulator/model.py, GridEvents). The test adds: one long power failure (failures 6+1 = 7, long
# 3+1 = 4), two sags on L3 (2+2 = 4) and one swell on L1 (1+1 = 2).
EVENTS = (
    {"event": "long_power_failure", "duration_s": 240},
    {"event": "sag", "phase": 3},
    {"event": "sag", "phase": 3},
    {"event": "swell", "phase": 1},
)
EXPECTED = dict(zip(COUNTS, (7, 4, 3, 2, 4, 2, 1, 1), strict=True))
# Hex of the M-Bus meters' ASCII ids "SIM-G-00000000" and "SIM-W-00000000" (model.unique_id): S=53
# I=49 M=4D -=2D G=47 W=57 0=30.
GAS_ID = "53494D2D472D" + "30" * 8
WATER_ID = "53494D2D572D" + "30" * 8


def frequency_hz(ts: str) -> float:
    """The simulator's frequency at a second (home profile: 50 Hz ± 0.03, model._frequency_chz)."""
    second = round(datetime.fromisoformat(ts).timestamp())
    return (5000 + round(3 * math.sin(second / 47))) / 100


def grid_events(stack: Stack) -> None:
    assert stack.sim is not None
    with stack.sim._client() as client:
        for event in EVENTS:
            assert client.post("/_sim/grid-event", json=event).status_code == 200


def check_reading(reading: dict[str, object]) -> None:
    assert {name: reading[name] for name in COUNTS} == EXPECTED
    assert reading["frequency_hz"] == frequency_hz(str(reading["ts"]))
    currents = [abs(float(str(reading[f"current_l{n}_a"]))) for n in (1, 2, 3)]
    assert reading["current_a"] == pytest.approx(sum(currents), abs=0.005)  # v2: the phases' sum
    assert (reading["gas_unique_id"], reading["water_unique_id"]) == (GAS_ID, WATER_ID)


@pytest.mark.parametrize("api", ["v2"])
def test_grid_fields_reach_realtime_and_the_raw_export(
    api: str, database_url: str, redis_url: str, make_stack: StackFactory
) -> None:
    stack = make_stack(database_url, redis_url=redis_url, api=api).start()
    stack.wait_streaming(1)
    grid_events(stack)

    def realtime() -> dict[str, object]:
        r = stack.query_get(f"/v1/devices/{stack.device}/realtime")
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        return body

    wait_until(lambda: realtime()["power_fail_count"] == 7, 30, "the power failure in realtime", step_s=0.25)
    now = realtime()
    check_reading(now)
    assert all(type(now[name]) is int for name in COUNTS)  # whole numbers are JSON integers

    newest = stack.export()[-1]  # NDJSON
    assert str(newest["ts"]) >= str(now["ts"])
    check_reading(newest)

    end = (datetime.fromisoformat(str(now["ts"])) + timedelta(days=1)).isoformat()
    window = {"start": str(now["ts"]), "end": end, "bucket": "raw", "format": "csv"}
    r = stack.query_get(f"/v1/devices/{stack.device}/export", **window)
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    first = rows[0]  # the reading realtime showed
    assert first["ts"] == now["ts"]
    assert {name: first[name] for name in COUNTS} == {name: str(v) for name, v in EXPECTED.items()}
    assert float(first["frequency_hz"]) == frequency_hz(first["ts"])
    assert (first["gas_unique_id"], first["water_unique_id"]) == (GAS_ID, WATER_ID)
