"""The meter's state: counters that integrate the profile's power exactly, second by second.

Power is constant during each whole second (as the meter's 1 s DSMR telegram reports it), so the
energy of second ``s`` is ``P(s) × 1 s``. The counters are integer sums of that in joules (and
millilitres for gas and water): exact, with no float drift, printed in kWh with the meter's 3 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from p1_edge.simulator.profiles import Load, Profile

MAX_CATCH_UP_S = 7 * 86400  # after a long pause the model jumps instead of looping for minutes


def tariff_at(local: datetime) -> int:
    """Belgian registers: 1 = day, 2 = night (22:00–07:00 and weekends)."""
    if local.weekday() >= 5 or local.hour >= 22 or local.hour < 7:
        return 2
    return 1


@dataclass
class MeterState:
    import_j: list[int] = field(default_factory=lambda: [10830511 * 3600, 2948827 * 3600])
    export_j: list[int] = field(default_factory=lambda: [1285951 * 3600, 2876510 * 3600])
    gas_ml: int = 2569646 * 1000
    water_ml: int = 123456 * 1000
    quarter_start: int = 0
    quarter_import_j: int = 0
    month: tuple[int, int] = (0, 0)
    month_peak_w: float = 0.0
    month_peak_ts: datetime | None = None
    second: int = 0  # the last integrated second (epoch)
    load: Load = field(default_factory=lambda: Load(0, 0, 0, 0, 0))
    tariff: int = 1
    generation: int = 0  # bumped by a counter reset (meter replaced)


class MeterModel:
    def __init__(self, profile: Profile, tz: ZoneInfo, start: datetime | None = None) -> None:
        self.profile = profile
        self.tz = tz
        now = int((start or datetime.now(UTC)).timestamp())
        self.state = MeterState(second=now - 1)
        self.state.quarter_start = now - now % 900
        self._advance_to(now)

    def replace_meter(self) -> None:
        """A new meter: counters start again near zero and the meter's unique_id changes."""
        st = self.state
        st.import_j = [0, 0]
        st.export_j = [0, 0]
        st.gas_ml = 0
        st.water_ml = 0
        st.quarter_import_j = 0
        st.month_peak_w = 0.0
        st.month_peak_ts = None
        st.generation += 1

    def now(self, at: datetime | None = None) -> MeterState:
        self._advance_to(int((at or datetime.now(UTC)).timestamp()))
        return self.state

    def _advance_to(self, second: int) -> None:
        st = self.state
        if second - st.second > MAX_CATCH_UP_S:
            st.second = second - MAX_CATCH_UP_S
        while st.second < second:
            st.second += 1
            self._step(st.second)

    def _step(self, second: int) -> None:
        """Integrates second ``second - 1 .. second`` with the power the profile gives at its start."""
        st = self.state
        local = datetime.fromtimestamp(second - 1, self.tz)
        load = self.profile.load(local)
        tariff = tariff_at(local)
        power = load.total
        if power >= 0:
            st.import_j[tariff - 1] += power
        else:
            st.export_j[tariff - 1] += -power
        st.gas_ml += load.gas_ml_s
        st.water_ml += load.water_ml_s
        quarter = (second - 1) - (second - 1) % 900  # the quarter this second's energy belongs to
        if quarter != st.quarter_start:
            self._close_quarter(st.quarter_start)
            st.quarter_start = quarter
            st.quarter_import_j = 0
        st.quarter_import_j += max(power, 0)
        st.load = load
        st.tariff = tariff

    def _close_quarter(self, quarter_start: int) -> None:
        st = self.state
        end = datetime.fromtimestamp(quarter_start + 900, self.tz)
        month = (end.year, end.month)
        if month != st.month:
            st.month, st.month_peak_w, st.month_peak_ts = month, 0.0, None
        demand_w = st.quarter_import_j / 900.0
        if demand_w > st.month_peak_w:
            st.month_peak_w, st.month_peak_ts = demand_w, end

    def avg_power_15m_w(self) -> float:
        """Average offtake of the running quarter so far (what Belgian meters show)."""
        st = self.state
        elapsed = st.second - st.quarter_start
        return st.quarter_import_j / elapsed if elapsed > 0 else 0.0

    def gas_reading(self) -> tuple[float, datetime]:
        """Gas as the meter relays it: the value of the last 5-minute boundary."""
        st = self.state
        ts = st.second - st.second % 300
        return round(st.gas_ml / 1_000_000, 3), datetime.fromtimestamp(ts, self.tz)

    def water_reading(self) -> tuple[float, datetime]:
        st = self.state
        ts = st.second - st.second % 60
        return round(st.water_ml / 1_000_000, 3), datetime.fromtimestamp(ts, self.tz)

    def local_time(self) -> datetime:
        return datetime.fromtimestamp(self.state.second, self.tz)

    def unique_id(self) -> str:
        return f"SIM{self.state.generation:04d}".encode().hex().upper()

    def step_seconds(self, seconds: int) -> None:
        """Test hook: run the model ``seconds`` ahead of its own clock."""
        self._advance_to(self.state.second + seconds)
