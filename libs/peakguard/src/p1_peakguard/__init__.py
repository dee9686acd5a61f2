"""The capacity tariff's running quarter-hour, projected, and the peak warning: one implementation for
query's ``capacity/now`` and the notify service (README, "Capacity now and the peak guard").

- ``quarter``: the pure computation (``QuarterNow``, ``running_quarter``, the month's counted peak);
- ``warning``: the warning rule, a pure function of the quarter's states;
- ``store``: what ``running_quarter`` needs, read from PostgreSQL in one round trip;
- ``price``: the capacity price (€/kW/year) by grid operator and year.
"""
