"""API v2 of the HWE-P1 (HTTPS, bearer token), as HomeWizard documents it.

Every answer carries ``X-Api-Version: 2.0.0``; a request asking another major version with
``X-Api-Version`` gets 400 ``request:api-version-not-supported``. Every route but ``POST /api/user``
needs ``Authorization: Bearer <token>`` — ``GET /api`` included (python-homewizard-energy detects v2 by
exactly that 401) — else 401 ``user:unauthorized``. Routes: ``GET /api``, ``GET /api/measurement``,
``GET /api/telegram`` (text/plain), ``GET``/``PUT /api/system``, ``PUT /api/system/identify`` and
``PUT /api/system/reboot`` (204), and ``/api/user``: ``POST`` (pairing), ``GET`` (list), ``DELETE``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from p1_edge.httpserver import Request, Response
from p1_edge.simulator import payloads, telegram
from p1_edge.simulator.appliance import name_error
from p1_edge.simulator.device import (
    Device,
    empty_answer,
    json_answer,
    json_object,
    method_not_allowed,
    text_answer,
)

API_VERSION = "2.0.0"
HEADERS = {"X-Api-Version": API_VERSION}
ROUTES: dict[str, set[str]] = {
    "/api": {"GET"},
    "/api/measurement": {"GET"},
    "/api/telegram": {"GET"},
    "/api/system": {"GET", "PUT"},
    "/api/system/identify": {"PUT"},
    "/api/system/reboot": {"PUT"},
    "/api/user": {"GET", "POST", "DELETE"},
}
# PUT /api/system: each writable setting and the test its value must pass
_SETTINGS: dict[str, Callable[[object], bool]] = {
    "cloud_enabled": lambda v: isinstance(v, bool),
    "api_v1_enabled": lambda v: isinstance(v, bool),
    "status_led_brightness_pct": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 100,
}


def error(status: int, code: str) -> Response:
    return json_answer(status, {"error": code}, HEADERS)


def bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def handle(device: Device, request: Request) -> Response:
    if request.headers.get("x-api-version", "2").strip() != "2":
        return error(400, "request:api-version-not-supported")
    if (request.method, request.path) == ("POST", "/api/user"):
        return _create_user(device, request)
    user = device.appliance.users.authorised(bearer(request))
    if user is None:
        return error(401, "user:unauthorized")
    allowed = ROUTES.get(request.path)
    if allowed is None:
        return empty_answer(404, HEADERS)
    if request.method not in allowed:
        return method_not_allowed(allowed, HEADERS)
    return _route(device, request, user)


def _route(device: Device, request: Request, user: str) -> Response:
    appliance = device.appliance
    path = request.path
    if path == "/api":
        return json_answer(200, payloads.device_v2(appliance.serial), HEADERS)
    if path == "/api/measurement":
        reading = device.reading()
        answer = json_answer(200, payloads.measurement_v2(reading), HEADERS)
        device.on_served(reading)
        return answer
    if path == "/api/telegram":
        return text_answer(200, telegram.render(device.reading(), device.history()), HEADERS)
    if path == "/api/system/identify":
        appliance.identified += 1
        return empty_answer(204, HEADERS)
    if path == "/api/system/reboot":
        appliance.booted_at = device.second()
        return empty_answer(204, HEADERS)
    if path == "/api/system":
        return _system(device, request)
    return _users(device, request, user)


def _system(device: Device, request: Request) -> Response:
    appliance = device.appliance
    if request.method == "PUT":
        body = json_object(request.body)
        if body is None:
            return error(400, "request:invalid-json")
        wanted = {k: v for k, v in body.items() if k in _SETTINGS}
        if not wanted:
            return error(400, "json:no-parameters-recognized")
        for key, value in wanted.items():
            if not _SETTINGS[key](value):
                return error(400, f"json:parameter-invalid-type:{key}")
        for key, value in wanted.items():  # all or nothing: applied once every value passed
            setattr(appliance, key, value)
    return json_answer(200, appliance.system_v2(device.second()), HEADERS)


def _create_user(device: Device, request: Request) -> Response:
    body = json_object(request.body)
    if body is None:
        return error(400, "request:invalid-json")
    if "name" not in body:
        return error(400, "json:parameter-missing:name")
    problem = name_error(body["name"])
    if problem is not None:
        return error(400, problem)
    if time.monotonic() >= device.appliance.pairing_until:
        return error(403, "user:creation-not-enabled")
    name = str(body["name"])
    return json_answer(200, {"token": device.appliance.users.create(name), "name": name}, HEADERS)


def _users(device: Device, request: Request, user: str) -> Response:
    users = device.appliance.users
    if request.method == "GET":
        listed = [{"name": n, **({"current": True} if n == user else {})} for n in users.tokens]
        return json_answer(200, listed, HEADERS)
    body = json_object(request.body) if request.body else {}
    if body is None:
        return error(400, "request:invalid-json")
    name = body.get("name", user)
    if not isinstance(name, str) or not users.delete(name):
        return error(404, "user:not-found")
    return empty_answer(204, HEADERS)
