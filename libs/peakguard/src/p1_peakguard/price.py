"""The capacity tariff's price (€/kW/year, excl. VAT) by grid operator and year (README, "Capacity price").

Flanders' low-voltage capacity tariff is set per Fluvius distribution area and calendar year (approved by
the VREG). A figure enters ``PRICES`` only with its source; a year without one is unknown (absent), never
guessed. The price of a ledger is, in order: ``CAPACITY_PRICE_EUR_PER_KW_YEAR`` when set (an override,
e.g. the figure on one's own bill), else the table's figure for ``GRID_OPERATOR`` and the asked month's
year, else ``FALLBACK_EUR_PER_KW_YEAR``.
"""

from typing import Final, Literal

# The Fluvius areas of Flanders, as the operators' tariff sheets name them (Fluvius Kempen was Iveka,
# Midden-Vlaanderen was Intergem: the names since 2023).
GridOperator = Literal[
    "fluvius-antwerpen",
    "fluvius-halle-vilvoorde",
    "fluvius-imewo",
    "fluvius-kempen",
    "fluvius-limburg",
    "fluvius-midden-vlaanderen",
    "fluvius-west",
    "fluvius-zenne-dijle",
]

# operator → year → €/kW/year excl. VAT, each with its source in a comment. Empty today: no published
# figure could be confirmed, excl. VAT, from a source this project can cite (docs/design.md §8 lists
# what was found and why it was not taken). Add a year as ``2026: 12.3456,  # <source>``.
PRICES: Final[dict[str, dict[int, float]]] = {
    "fluvius-antwerpen": {},
    "fluvius-halle-vilvoorde": {},
    "fluvius-imewo": {},
    "fluvius-kempen": {},
    "fluvius-limburg": {},
    "fluvius-midden-vlaanderen": {},
    "fluvius-west": {},
    "fluvius-zenne-dijle": {},
}

# The price the service has always used when nothing else is known (its source was never recorded).
FALLBACK_EUR_PER_KW_YEAR: Final = 53.25


def price_eur_per_kw_year(
    operator: str | None,
    year: int,
    override: float | None,
    prices: dict[str, dict[int, float]] = PRICES,
) -> float:
    """The €/kW/year of a ledger of ``year``: the override, else the table's, else the fallback."""
    if override is not None:
        return override
    if operator is not None:
        known = prices.get(operator, {}).get(year)
        if known is not None:
            return known
    return FALLBACK_EUR_PER_KW_YEAR
