"""API v1 of the HWE-P1 (plain HTTP, no authentication; the user switches it on in the app).

``GET /api``, ``GET /api/v1/data``, ``GET /api/v1/telegram`` (text/plain), ``GET``/``PUT /api/v1/system``
(``{"cloud_enabled": bool}``), ``PUT /api/v1/identify``. Errors are HomeWizard's v1 objects
``{"error": {"id": n, "description": "…"}}`` with its ids (2 invalid JSON, 7 invalid value, 202 API
disabled). A P1 has no ``/api/v1/state`` (that is the Energy Socket's): 404, as the real one answers.
"""

from __future__ import annotations

from p1_edge.httpserver import Request, Response
from p1_edge.simulator import payloads, telegram
from p1_edge.simulator.device import (
    Device,
    empty_answer,
    json_answer,
    json_object,
    method_not_allowed,
    text_answer,
)

ROUTES: dict[str, set[str]] = {
    "/api": {"GET"},
    "/api/v1/data": {"GET"},
    "/api/v1/telegram": {"GET"},
    "/api/v1/system": {"GET", "PUT"},
    "/api/v1/identify": {"PUT"},
}


def error(status: int, code: int, description: str) -> Response:
    return json_answer(status, {"error": {"id": code, "description": description}})


API_DISABLED = (403, 202, "API not enabled")


def handle(device: Device, request: Request) -> Response:
    allowed = ROUTES.get(request.path)
    if allowed is None:
        return empty_answer(404)
    if request.method not in allowed:
        return method_not_allowed(allowed)
    if not device.appliance.api_v1_enabled:  # switched off through API v2's PUT /api/system
        return error(*API_DISABLED)
    if request.path == "/api":
        return json_answer(200, payloads.device_v1(device.appliance.serial))
    if request.path == "/api/v1/data":
        reading = device.reading()
        second = device.second()
        wifi = device.appliance.wifi_ssid, device.appliance.wifi_rssi_db(second)
        answer = json_answer(200, payloads.data_v1(reading, *wifi))
        device.on_served(reading)
        return answer
    if request.path == "/api/v1/telegram":
        reading = device.reading()
        return text_answer(200, telegram.render(reading, device.history()))
    if request.path == "/api/v1/identify":
        device.appliance.identified += 1
        return json_answer(200, {"identify": "ok"})
    return _system(device, request)


def _system(device: Device, request: Request) -> Response:
    appliance = device.appliance
    if request.method == "PUT":
        body = json_object(request.body)
        if body is None:
            return error(400, 2, "Body contains invalid json")
        if "cloud_enabled" in body:
            if not isinstance(body["cloud_enabled"], bool):
                return error(400, 7, "cloud_enabled must be true or false")
            appliance.cloud_enabled = body["cloud_enabled"]
    return json_answer(200, appliance.system_v1())
