"""What a meter's registers read at one second, exactly: ``p1-edge simulate --state FILE`` starts there.

`make demo` computes the meter's past (``history.py``) and hands the simulator the registers at the
history's last second, so that the live meter continues the same counters; on a later run it starts the
history from the registers of the newest stored reading. Joules and millilitres, as the model keeps them:
a register shown in whole Wh (litres) then reads exactly what it read before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from p1_edge.simulator.model import MeterState
from p1_edge.simulator.reading import MbusKind

Captured = dict[MbusKind, tuple[int, int]]  # the M-Bus meter's last capture: (second, ml)
_KINDS: tuple[MbusKind, ...] = ("gas_meter", "water_meter")


@dataclass(frozen=True)
class Registers:
    second: int
    import_j: tuple[int, int]  # tariff registers 1 and 2
    export_j: tuple[int, int]
    gas_ml: int
    water_ml: int
    captured: tuple[tuple[int, int], tuple[int, int]]  # gas, water: (second, ml) of the last capture

    @classmethod
    def of(cls, state: MeterState) -> Registers:
        gas, water = (state.captured.get(kind, (state.second, 0)) for kind in _KINDS)
        return cls(
            state.second,
            (state.import_j[0], state.import_j[1]),
            (state.export_j[0], state.export_j[1]),
            state.gas_ml,
            state.water_ml,
            (gas, water),
        )

    def apply(self, state: MeterState) -> None:
        """Sets ``state``'s registers (the model must stand at :attr:`second`)."""
        if state.second != self.second:
            raise ValueError(f"the registers are of second {self.second}, the meter is at {state.second}")
        state.import_j, state.export_j = list(self.import_j), list(self.export_j)
        state.gas_ml, state.water_ml = self.gas_ml, self.water_ml
        state.captured = dict(zip(_KINDS, self.captured, strict=True))

    def dumps(self) -> str:
        return json.dumps(
            {
                "second": self.second,
                "import_j": list(self.import_j),
                "export_j": list(self.export_j),
                "gas_ml": self.gas_ml,
                "water_ml": self.water_ml,
                "captured": [list(c) for c in self.captured],
            }
        )

    @classmethod
    def loads(cls, text: str) -> Registers:
        """Raises ValueError naming what is wrong."""
        try:
            raw = json.loads(text)
            registers = cls(
                _count(raw["second"]),
                _pair(raw["import_j"]),
                _pair(raw["export_j"]),
                _count(raw["gas_ml"]),
                _count(raw["water_ml"]),
                (_pair(raw["captured"][0]), _pair(raw["captured"][1])),
            )
        except (KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a meter state ({exc.__class__.__name__}: {exc})") from None
        return registers


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a whole number ≥ 0")
    return value


def _pair(value: object) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"{value!r} is not a pair")
    return _count(value[0]), _count(value[1])
