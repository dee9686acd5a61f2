"""p1_notify: peak warnings and results of the capacity tariff, through Apprise."""
