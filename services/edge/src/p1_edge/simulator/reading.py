"""One telegram's worth of meter values, already at the meter's own resolution.

Both faces of the simulator render from a :class:`MeterReading`: the HomeWizard JSON (v1 and v2) and the
DSMR telegram. Every value is quantised once, here, to what the telegram can say (watt-hours, watts,
tenths of a volt, the flavour's current resolution, litres), so the JSON and the telegram of one instant
agree to the digit and the tariff registers add up to the totals exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from p1_edge.simulator.flavours import Flavour

MbusKind = Literal["gas_meter", "water_meter"]
MBUS_DEVICE_TYPES: dict[MbusKind, int] = {"gas_meter": 3, "water_meter": 7}  # OMS device types


@dataclass(frozen=True)
class Phase:
    n: int  # 1, 2 or 3
    power_w: int  # + offtake, − injection
    voltage_dv: int | None  # tenths of a volt; None where the meter gives no voltage (DSMR 4)
    current_a: Decimal  # signed like the power, at the flavour's resolution


@dataclass(frozen=True)
class Peak:
    """A quarter-hour demand: its average in whole watts and the local end of its quarter."""

    w: int
    at: datetime


@dataclass(frozen=True)
class MonthPeak:
    """One entry of ``0-0:98.1.0``: the month that ended at ``month_end`` (local) and its peak."""

    month_end: datetime
    peak: Peak


@dataclass(frozen=True)
class PowerFailure:
    ended: datetime
    duration_s: int


@dataclass(frozen=True)
class Mbus:
    """A gas or water meter on the smart meter's M-Bus, as last captured."""

    channel: int
    kind: MbusKind
    unique_id: str  # hex of the meter's ASCII equipment id, as HomeWizard shows it
    captured: datetime
    litres: int

    @property
    def device_type(self) -> int:
        return MBUS_DEVICE_TYPES[self.kind]


@dataclass(frozen=True)
class Capacity:
    """The Belgian capacity-tariff registers."""

    average_w: int  # 1-0:1.4.0, the running quarter's average demand so far
    month_peak: Peak  # 1-0:1.6.0, this month's highest completed quarter


@dataclass(frozen=True)
class MeterReading:
    flavour: Flavour
    second: int  # epoch second of the telegram
    at: datetime  # the same instant in the meter's local time
    unique_id: str  # hex of the meter's ASCII equipment id
    tariff: int
    import_wh: tuple[int, int]  # registers 1 and 2
    export_wh: tuple[int, int]
    phases: tuple[Phase, ...]
    frequency_chz: int | None  # hundredths of a hertz
    power_failures: int
    long_power_failures: int
    failure_log: tuple[PowerFailure, ...]  # oldest first, at most 10
    sags: tuple[int, ...]  # per phase present
    swells: tuple[int, ...]
    capacity: Capacity | None
    mbus: tuple[Mbus, ...]

    @property
    def power_w(self) -> int:
        return sum(p.power_w for p in self.phases)

    @property
    def import_total_wh(self) -> int:
        return sum(self.import_wh)

    @property
    def export_total_wh(self) -> int:
        return sum(self.export_wh)
