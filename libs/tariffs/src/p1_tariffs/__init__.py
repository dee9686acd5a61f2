"""Tariff plans and market prices (issue 15): the plan file (``plans``), the prices CSV (``prices``), the
grid operators (``operators``) and the one rule of which plan is in force when (``rules``)."""
