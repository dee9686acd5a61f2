"""Household load profiles: power per phase as a pure function of local time.

Pure and deterministic (pseudo-random parts come from a hash of the minute), so a test can integrate
the same function the meter model does and compare counters exactly.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache


@dataclass(frozen=True)
class Load:
    """Whole watts per phase (+ offtake, − injection), gas and water flow in whole ml/s.

    Integers on purpose: the model integrates them in joules and millilitres, so the counters are
    exact sums, with no float drift however long the simulator runs.
    """

    l1: int
    l2: int
    l3: int
    gas_ml_s: int
    water_ml_s: int

    @property
    def total(self) -> int:
        return self.l1 + self.l2 + self.l3


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    three_phase: bool
    solar_peak_w: float
    ev_w: float
    has_gas: bool
    has_water: bool
    # A grid without ripple: voltages and frequency stay at their nominal values, so with nothing
    # switched on every telegram repeats the last one's values (what a repeat detector must not drop).
    quiet_grid: bool = field(default=False, kw_only=True)
    idle: bool = field(default=False, kw_only=True)  # nothing switched on: 0 W all day
    # The share of nights on which the EV charges (22:00-01:30), drawn per night.
    ev_nights: float = field(default=1.0, kw_only=True)
    # A heat pump's compressor (W, electric): heating by the season's outdoor temperature (below).
    heat_pump_w: float = field(default=0.0, kw_only=True)
    # The share of its hours in which the gas burner runs high (0.9 m³/h) rather than low (0.09 m³/h).
    gas_high_share: float = field(default=0.5, kw_only=True)
    # A heater (W) switched on from minute 2 to minute 12 of every quarter-hour and nothing else but the
    # base load: a capacity peak p1-notify warns about within minutes (the demo, notify's tests).
    quarter_heater_w: float = field(default=0.0, kw_only=True)

    def load(self, local: datetime) -> Load:
        if self.idle:
            return Load(0, 0, 0, 0, 0)
        if self.quarter_heater_w:
            heater = self.quarter_heater_w if 2 <= local.minute % 15 < 12 else 0.0
            return Load(round(250.0 + heater), 0, 0, 0, 0)
        hour = local.hour + local.minute / 60 + local.second / 3600
        base = 180.0 + (90.0 if (local.minute // 20) % 3 == 0 else 0.0)  # fridge cycling
        cooking = 0.0
        if 17.5 <= hour < 18.75 and _coin(local, "cook") < 0.7:
            cooking = 2200.0 + 1200.0 * _coin(local, "oven")
        elif 7.0 <= hour < 7.1:
            cooking = 2000.0  # kettle
        ev = self.ev_w if (hour >= 22.0 or hour < 1.5) and self.charges_ev(local) else 0.0
        solar = 0.0
        if self.solar_peak_w:
            # Belgian seasons: ~16 h of daylight in June, ~8 h in December, solar noon ~13:30 local.
            season = math.cos(2 * math.pi * (local.timetuple().tm_yday - 172) / 365)
            half_day = 6.0 + 2.0 * season
            sun = (hour - (13.5 - half_day)) / (2 * half_day)
            if 0.0 < sun < 1.0:
                cloud = 0.6 + 0.4 * _coin(local, "cloud")
                strength = 0.65 + 0.35 * season
                solar = self.solar_peak_w * strength * math.sin(math.pi * sun) * cloud
        gas = 0
        if self.has_gas and (6.0 <= hour < 9.0 or 17.0 <= hour < 22.0):
            gas = 250 if _coin(local, "burner") < self.gas_high_share else 25  # 0.9 or 0.09 m³/h
        water = 0
        if self.has_water and (7.0 <= hour < 7.5 or 19.0 <= hour < 19.3):
            water = 125  # 7.5 l/min: a shower
        heat = self._heat_pump(local, hour)
        # Whole watts, as the meter reports them: the reported power is what the counters integrate.
        if not self.three_phase:
            return Load(round(base + cooking + ev + heat - solar), 0, 0, gas, water)
        third = round(ev / 3)
        return Load(round(base - solar) + third, round(cooking) + third, third + round(heat), gas, water)

    def charges_ev(self, local: datetime) -> bool:
        """Whether the car charges on the night ``local`` lies in (a night after 00:00 is the evening's)."""
        evening = local.date() - timedelta(days=1) if local.hour < 12 else local.date()
        return self.ev_nights >= 1.0 or _day_coin(evening, "ev") < self.ev_nights

    def _heat_pump(self, local: datetime, hour: float) -> float:
        """The compressor runs on a share of the minutes that grows as the day gets colder.

        The day's mean outdoor temperature follows Belgium's seasons (about 3 °C in mid-January, 18 °C in
        mid-July) ± 3 °C from day to day; heating starts below 15 °C and needs the whole hour at 3 °C;
        the morning warms the house up (×1.4), the night is set back (×0.5)."""
        if not self.heat_pump_w:
            return 0.0
        duty = (15.0 - outdoor_c(local.date())) / 12.0
        if 5.0 <= hour < 8.0:
            duty *= 1.4
        elif hour >= 23.0 or hour < 5.0:
            duty *= 0.5
        return self.heat_pump_w if _coin(local, "compressor") < duty else 0.0


def _coin(local: datetime, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) for the minute of ``local`` (not for security)."""
    return _hashed(f"{salt}:{local:%Y%m%d%H%M}")


@lru_cache(maxsize=64)
def outdoor_c(day: date) -> float:
    """The day's mean outdoor temperature (°C) the heat pump heats against."""
    season = math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365)
    return 10.5 - 7.5 * season + 6.0 * (_day_coin(day, "weather") - 0.5)


@lru_cache(maxsize=64)
def _day_coin(day: date, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) for a day."""
    return _hashed(f"{salt}:{day:%Y%m%d}")


def _hashed(key: str) -> float:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") / 2**32


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("home", "3-phase, solar, gas and water, cooking peaks", True, 4000.0, 0.0, True, True),
        Profile("single-phase", "1-phase flat, no solar, no gas", False, 0.0, 0.0, False, False),
        Profile("ev", "3-phase with an 11 kW EV charging at night, gas", True, 0.0, 11000.0, True, False),
        Profile("solar", "1-phase with 6 kW solar: long export at midday", False, 6000.0, 0.0, False, False),
        Profile(
            "family",
            "3-phase, 5 kW solar, a 7.4 kW EV on a third of the nights, a 2.5 kW hybrid heat pump "
            "(gas for hot water and the coldest mornings), water",
            True,
            5000.0,
            7400.0,
            True,
            True,
            ev_nights=0.35,
            heat_pump_w=2500.0,
            gas_high_share=0.2,
        ),
        Profile(
            "peak",
            "1-phase, 250 W and a 6 kW heater from minute 2 to 12 of every quarter: a peak warning each time",
            False,
            0.0,
            0.0,
            False,
            False,
            quarter_heater_w=6000.0,
        ),
        Profile(
            "idle",
            "1-phase, nothing on, a quiet grid: every telegram's values equal the last one's",
            False,
            0.0,
            0.0,
            False,
            False,
            quiet_grid=True,
            idle=True,
        ),
    )
}
