"""Control routes for tests and demos (``/_sim/…``, not part of any real meter).

* ``GET /_sim/served``: the readings served as JSON so far (the last ``SERVED_MAX``, oldest first);
* ``GET /_sim/state``: the meter's clock, flavour and the dongle's settings;
* ``POST /_sim/faults`` ``{"timeout": bool, "api_disabled": bool, "malformed": bool}``;
* ``POST /_sim/replace-meter`` ``{"meters": ["electricity", "gas", "water"]}`` (default: all): new
  meters, counters from zero, new equipment ids; a new electricity meter also starts an empty peak history;
* ``POST /_sim/button``: the dongle's button (opens pairing for 30 s);
* ``POST /_sim/advance`` ``{"seconds": n}``: moves the meter's clock on (1 ≤ n ≤ 86400), integrating
  every second in between;
* ``POST /_sim/grid-event`` ``{"event": "sag"|"swell"|"power_failure"|"long_power_failure",
  "phase": 1-3, "duration_s": n}``: counts a power-quality event as the meter would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from p1_edge.httpserver import Request, Response
from p1_edge.simulator.device import json_answer, json_object
from p1_edge.simulator.model import METERS, Which

if TYPE_CHECKING:
    from p1_edge.simulator.server import Simulator

MAX_ADVANCE_S = 86400  # a day of seconds is integrated in well under a second
GRID_EVENTS = ("sag", "swell", "power_failure", "long_power_failure")
FAULTS = ("timeout", "api_disabled", "malformed")


def bad(detail: str) -> Response:
    return json_answer(400, {"error": detail})


def handle(sim: Simulator, request: Request) -> Response:
    if request.method == "GET":
        if request.path == "/_sim/served":
            return json_answer(200, {"total": sim.served_total, "readings": list(sim.served)})
        if request.path == "/_sim/state":
            return json_answer(200, sim.state())
        return json_answer(404, {"error": "not found"})
    if request.method != "POST":
        return json_answer(405, {"error": "GET or POST only"})
    if request.path == "/_sim/button":
        sim.press_button()
        return json_answer(200, {"pairing_open_s": 30})
    body = json_object(request.body or b"{}")
    if body is None:
        return bad("a JSON object is expected")
    routes = {
        "/_sim/faults": _faults,
        "/_sim/replace-meter": _replace,
        "/_sim/advance": _advance,
        "/_sim/grid-event": _grid_event,
    }
    route = routes.get(request.path)
    return route(sim, body) if route else json_answer(404, {"error": "not found"})


def _faults(sim: Simulator, body: dict[str, object]) -> Response:
    for name in FAULTS:
        if name in body:
            setattr(sim.faults, name, bool(body[name]))
    return json_answer(200, {name: getattr(sim.faults, name) for name in FAULTS})


def _replace(sim: Simulator, body: dict[str, object]) -> Response:
    meters = body.get("meters", list(METERS))
    if not isinstance(meters, list) or not meters or any(m not in get_args(Which) for m in meters):
        return bad(f"meters: a non-empty list of {', '.join(METERS)}")
    sim.device.reading()  # bring the model up to now: the old meters' last seconds count
    chosen: list[Which] = [m for m in METERS if m in meters]
    sim.model.replace(chosen)
    ids: dict[str, str] = {m: sim.model.unique_id(m) for m in chosen}
    ids["unique_id"] = sim.model.unique_id()
    return json_answer(200, ids)


def _advance(sim: Simulator, body: dict[str, object]) -> Response:
    seconds = body.get("seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= MAX_ADVANCE_S:
        return bad(f"seconds: an integer from 1 to {MAX_ADVANCE_S}")
    try:
        sim.clock.advance(seconds)
    except ValueError as exc:
        return bad(f"seconds: {exc}")
    sim.device.reading()
    return json_answer(200, sim.state())


def _grid_event(sim: Simulator, body: dict[str, object]) -> Response:
    event, phase, duration = body.get("event"), body.get("phase", 1), body.get("duration_s", 0)
    if event not in GRID_EVENTS:
        return bad(f"event: one of {', '.join(GRID_EVENTS)}")
    if not isinstance(phase, int) or isinstance(phase, bool) or not 1 <= phase <= 3:
        return bad("phase: 1, 2 or 3")
    if not isinstance(duration, int) or isinstance(duration, bool) or not 0 <= duration < 10**10:
        return bad("duration_s: a whole number of seconds, at least 0")
    sim.device.reading()
    sim.model.grid_event(str(event), phase, duration)
    return json_answer(200, {"event": event, "phase": phase})
