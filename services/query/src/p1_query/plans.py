"""The tariff plans in force for a device (migration 0010), read once per request.

Which plan is in force when is ``p1_tariffs.rules``' rule (its one owner: ``spans``); here the device's
rows are read and the range cut into segments, each in one plan, as UTC seconds for the costs' arithmetic.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from p1_query.db import Conn
from p1_tariffs.rules import EVERY_DEVICE, PLAN_COLUMNS, TariffPlan, spans

Plan = TariffPlan


@dataclass(frozen=True, slots=True)
class Segment:
    """A plan in force over [start, end) (UTC seconds)."""

    start: float
    end: float
    plan: Plan


_PLANS_SQL: Final = (
    f"SELECT {', '.join(PLAN_COLUMNS)} FROM tariff_plans WHERE device_id = $1 OR device_id = '{EVERY_DEVICE}'"
)


async def device_plans(conn: Conn, device_id: str) -> list[Plan]:
    """The rows that may apply to the device: its own and every device's."""
    return [TariffPlan.from_record(row) for row in await conn.fetch(_PLANS_SQL, device_id)]


def in_force(plans: Sequence[Plan], device_id: str, start: float, end: float) -> list[Segment]:
    """The plans in force within [start, end), in time order, split exactly at each change; a part in no
    plan (before the first one starts) is in no segment."""
    if not plans:
        return []
    a, b = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    return [
        Segment(span.start.timestamp(), span.end.timestamp(), span.plan)
        for span in spans(plans, device_id, a, b)
        if span.plan is not None
    ]
