"""Arbitrary counter histories and arrival orders (Hypothesis), and the bounds they must respect.

A history: readings at growing times (gaps from half a second to an hour) whose import and export
counters flow within the largest power, run at it (using none, part, all or more of the slack), burst
a little or far above it, drop for good (a reset), spike or read 0 once, or repeat. It arrives as
batches: contiguous pieces in any order, some sent again (overlaps and replays), each body possibly
reversed.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import strategies as st

from p1_contracts.models import SampleBatch
from p1_ingest.integrity import REPLACE_CONFIRM_S, Limits

LIM = Limits()
R, S = LIM.rate, LIM.slack
T0 = datetime(2026, 4, 1, tzinfo=UTC)
# Float noise allowed on a bound: the check computes with counter − r·t ≈ 2·10⁷ kWh (ulp ~4·10⁻⁹).
TOLERANCE = 1e-6

_GAPS = st.sampled_from([0.5, 1.0, 2.0, 10.0, 11.0, 60.0, 299.0, 300.0, 301.0, 900.0, 3600.0])
_KINDS = st.sampled_from(
    ["flow", "flow", "flow", "limit", "limit", "burst", "fast", "drop", "spike", "zero", "repeat"]
)


@st.composite
def _counter(draw: st.DrawFn, value: float, reported: float, gap: float) -> tuple[float, float]:
    """(what this reading reports, the counter after it)."""
    kind = draw(_KINDS)
    if kind == "flow":
        value += draw(st.floats(0, 1)) * R * gap
    elif kind == "limit":  # at the largest power, with none, some, all or a little more of the slack
        value += R * gap + draw(st.sampled_from([0.0, 0.5, 0.9, 1.0, 1.1])) * S
    elif kind == "burst":
        value += draw(st.floats(0, 1)) * R * gap + draw(st.floats(0, 3)) * S
    elif kind == "fast":
        value += draw(st.floats(2, 1000)) * R * gap
    elif kind == "drop":
        value *= draw(st.floats(0, 1))
    elif kind == "spike":
        return round(value + draw(st.floats(1, 1e6)), 3), value
    elif kind == "zero":
        return 0.0, value
    elif kind == "repeat":
        return reported, value
    return round(value, 3), value


@dataclass(frozen=True)
class Case:
    readings: list[tuple[float, float, float]]  # (seconds after T0, import, export), in time order
    batches: list[list[int]]  # indexes into readings, in arrival order, each in body order

    def body(self, device_id: str, batch: list[int]) -> SampleBatch:
        samples = [
            {
                "ts": (T0 + timedelta(seconds=self.readings[i][0])).isoformat(),
                "power_w": 0,
                "import_kwh": self.readings[i][1],
                "export_kwh": self.readings[i][2],
            }
            for i in batch
        ]
        return SampleBatch.model_validate_json(json.dumps({"device_id": device_id, "samples": samples}))


@st.composite
def cases(draw: st.DrawFn, max_readings: int = 40) -> Case:
    n = draw(st.integers(2, max_readings))
    t, imp, exp = 0.0, draw(st.sampled_from([0.0, 95.0, 13779.0, 1e5])), draw(st.sampled_from([0.0, 50.0]))
    shown_imp, shown_exp = imp, exp
    readings = []
    for _ in range(n):
        gap = draw(_GAPS)
        t += gap
        shown_imp, imp = draw(_counter(imp, shown_imp, gap))
        shown_exp, exp = draw(_counter(exp, shown_exp, gap))
        readings.append((t, shown_imp, shown_exp))
    cuts = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=6))))
    pieces = [list(range(a, b)) for a, b in pairwise([0, *cuts, n])]
    order = draw(st.permutations(range(len(pieces))))
    again = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 8)), max_size=2))
    batches = [pieces[k] for k in order] + [list(range(a, min(n, a + m))) for a, m in again]
    flips = draw(st.lists(st.booleans(), min_size=len(batches), max_size=len(batches)))
    return Case(readings, [b[::-1] if f else b for b, f in zip(batches, flips, strict=True)])


def check_pairwise(good: dict[int, list[tuple[float, float, float]]]) -> float:
    """The invariant behind every bound: per epoch, good readings (time, import, export) in time
    order never go down and never rise faster than the largest power allows, against *every* earlier
    one (f(b) − min f(a < b) ≤ S with f = counter − r·t). Returns the largest f(b) − min f(a < b) in
    units of S (≤ 1), for Hypothesis to steer towards the edge."""
    worst = 0.0
    for epoch, rows in good.items():
        rows = sorted(rows)
        for c in (1, 2):
            assert all(a[c] <= b[c] for a, b in pairwise(rows)), (epoch, c, rows)
            low = float("inf")
            for row in rows:
                f = row[c] - R * (T0.timestamp() + row[0])
                assert f <= low + S + TOLERANCE, (epoch, c, row, rows)
                if low != float("inf"):
                    worst = max(worst, (f - low) / S)
                low = min(low, f)
    return worst


def check_epoch_starts(starts: list[float], span: float) -> None:
    """Counter resets (not the first epoch, not a changed serial): more than 300 s apart, so at most
    span / 300 s + 1 of them."""
    starts = sorted(starts)
    assert all(b - a > REPLACE_CONFIRM_S for a, b in pairwise(starts)), starts
    assert len(starts) <= span / REPLACE_CONFIRM_S + 1
