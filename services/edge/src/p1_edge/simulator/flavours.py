"""The kinds of smart meter the simulated P1 dongle can sit on, and what each one's telegram carries.

* ``be`` — a Belgian (Fluvius) e-MUCs meter, DSMR 5 based: a telegram every second, gas every 5 min on
  M-Bus channel 1 as ``24.2.3``, the capacity-tariff registers ``1-0:1.4.0`` (running quarter's average
  demand), ``1-0:1.6.0`` (this month's peak) and ``0-0:98.1.0`` (the last 13 months' peaks). Register 1 is
  the day tariff, 2 the night/weekend tariff. Deliberately a *superset* of what Fluvius specifies: it also
  carries DSMR 5's power-failure and voltage sag/swell counters and the line frequency (``1-0:14.7.0``),
  so that every field a HomeWizard P1 can report is served by one profile.
* ``nl`` DSMR 5 — a Dutch meter as DSMR 5.0.2 specifies it (no capacity registers, no frequency; currents in
  whole amperes). Register 1 is the low (night/weekend) tariff, 2 the normal tariff.
* ``nl`` DSMR 4 — a Dutch DSMR 4.2 meter: a telegram only every 10 s, gas once an hour with the hour it
  was captured, no voltages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

Country = Literal["be", "nl"]
DsmrVersion = Literal[4, 5]


@dataclass(frozen=True)
class Flavour:
    country: Country
    dsmr: DsmrVersion
    telegram_period_s: int  # a new telegram (and so a new reading) this often
    mbus_period_s: int  # gas and water values are captured on these boundaries
    ident: str  # the telegram's identification line, after the "/"
    meter_model: str  # what HomeWizard shows as meter_model
    smr_version: int  # HomeWizard's smr_version / protocol_version
    capacity: bool  # the Belgian capacity-tariff registers 1.4.0, 1.6.0 and 98.1.0
    voltages: bool
    frequency: bool
    current_decimals: int  # Belgian meters give 0.01 A, Dutch ones whole amperes
    night_register: int  # the tariff register counting nights and weekends

    @property
    def name(self) -> str:
        return f"{self.country}-dsmr{self.dsmr}"

    def tariff_at(self, local: datetime) -> int:
        """The active register at local time ``local``: nights and weekends on the night register.

        Belgium (Fluvius): night 22:00–07:00 on weekdays and all weekend. The Netherlands: low tariff
        23:00–07:00 on weekdays and all weekend (most grid operators). Public holidays are not modelled.
        """
        night_from = 22 if self.country == "be" else 23
        if local.weekday() >= 5 or local.hour >= night_from or local.hour < 7:
            return self.night_register
        return 3 - self.night_register


FLAVOURS: Final[dict[tuple[Country, DsmrVersion], Flavour]] = {
    ("be", 5): Flavour(
        country="be",
        dsmr=5,
        telegram_period_s=1,
        mbus_period_s=300,
        ident="SIM5\\253769484_A",
        meter_model="SIMULATED  253769484_A",
        smr_version=50,
        capacity=True,
        voltages=True,
        frequency=True,
        current_decimals=2,
        night_register=2,
    ),
    ("nl", 5): Flavour(
        country="nl",
        dsmr=5,
        telegram_period_s=1,
        mbus_period_s=300,
        ident="SIM5\\2M550T-1012",
        meter_model="SIMULATED  2M550T-101",
        smr_version=50,
        capacity=False,
        voltages=True,
        frequency=False,
        current_decimals=0,
        night_register=1,
    ),
    ("nl", 4): Flavour(
        country="nl",
        dsmr=4,
        telegram_period_s=10,
        mbus_period_s=3600,
        ident="SIM5\\2ME382-1003",
        meter_model="SIMULATED  2ME382-100",
        smr_version=42,
        capacity=False,
        voltages=False,
        frequency=False,
        current_decimals=0,
        night_register=1,
    ),
}


def flavour(country: Country | None = None, dsmr: DsmrVersion = 5) -> Flavour:
    """The meter for ``country`` and ``dsmr``; DSMR 4 exists only in the Netherlands (and is the default
    country there), Belgium is the default otherwise."""
    chosen: Country = country or ("nl" if dsmr == 4 else "be")
    try:
        return FLAVOURS[(chosen, dsmr)]
    except KeyError:
        raise ValueError(f"no DSMR {dsmr} meter in {chosen!r}: DSMR 4 is Dutch only") from None
