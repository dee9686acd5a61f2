"""The grid operators a capacity price can be named by (a plan's ``grid_operator``, query's
``GRID_OPERATOR``): the one list, which p1_query.tariffs' price table is keyed by."""

from typing import Final, Literal, get_args

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
GRID_OPERATORS: Final[tuple[str, ...]] = get_args(GridOperator)
