"""How a plan file or a prices CSV writes an amount: a finite number in a range, kept as a Decimal (the
text's own digits: 0.30 stays 0.30, never the binary float 0.2999…)."""

import math
from decimal import Decimal
from typing import Any, Final

from pydantic_core import PydanticCustomError

# The bounds of migration 0010's CHECKs, said once.
PRICE_BOUND: Final = 10  # € per kWh, either sign (market prices go negative)
FEE_BOUND: Final = 100_000  # € per month, € per kW-year


def between(lo: int, hi: int) -> str:
    return f"must be a number between {lo} and {hi}"


def amount(value: Any, lo: int, hi: int) -> Decimal:
    """``value`` (an int or float of YAML) as a Decimal in [lo, hi]; raises PydanticCustomError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("number", between(lo, hi))
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("number", between(lo, hi))
    if not lo <= value <= hi:
        raise PydanticCustomError("number", between(lo, hi))
    # repr: the shortest text that reads back as the float, i.e. the digits the file wrote
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
