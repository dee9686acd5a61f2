"""What the API routes of both versions share: the meter's clock, the smart meter and the dongle, and the
HTTP answers in the shapes HomeWizard uses."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from p1_edge.httpserver import Response
from p1_edge.simulator.appliance import Appliance
from p1_edge.simulator.clock import MeterClock
from p1_edge.simulator.model import MeterModel
from p1_edge.simulator.reading import MeterReading, MonthPeak


@dataclass
class Device:
    clock: MeterClock
    model: MeterModel
    appliance: Appliance
    on_served: Callable[[MeterReading], None]  # a reading went out as JSON (for GET /_sim/served)

    def second(self) -> int:
        return self.clock.now()

    def reading(self) -> MeterReading:
        """The last telegram the meter sent: DSMR 5 sends one every second, DSMR 4 every 10 s."""
        now = self.clock.now()
        self.model.advance_to(now - now % self.model.flavour.telegram_period_s)
        return self.model.reading()

    def history(self) -> tuple[MonthPeak, ...]:
        return self.model.history()


def json_answer(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(body).encode(), "application/json", headers or {})


def text_answer(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, text.encode("latin-1"), "text/plain", headers or {})


def empty_answer(status: int, headers: dict[str, str] | None = None) -> Response:
    """An answer without a body (204; and 404/405, whose bodies HomeWizard does not document)."""
    return Response(status, b"", "", headers or {})


def json_object(body: bytes) -> dict[str, object] | None:
    """A request body that must be a JSON object; None when it is not one."""
    try:
        parsed = json.loads(body or b"null")
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def method_not_allowed(allowed: set[str], headers: dict[str, str] | None = None) -> Response:
    return empty_answer(405, {**(headers or {}), "Allow": ", ".join(sorted(allowed))})
