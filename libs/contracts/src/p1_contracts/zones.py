"""The time zones of the contract: the IANA names of the pinned ``tzdata`` package, with its data.

openapi.yaml's ``Tz`` parameter is an ``enum`` of ``names()``, written by ``make contracts``
(``scripts/tz_enum.py``); a test fails when the two differ, e.g. after a new tzdata pin without
``make contracts``. The pin (``tzdata==…`` in this package's dependencies, locked in uv.lock) makes every
machine generate the same list.

Python's zoneinfo reads the host's zone files first (``PYTHONTZPATH``, /usr/share/zoneinfo), whose version
and even names vary by machine (Debian adds ``localtime``). A service that takes a zone therefore calls
``use_pinned_data()`` at start-up: the host leaves the search path and every zone comes from the pinned
package, the data the enum was generated from.
"""

import zoneinfo
from importlib.resources import files
from typing import Final

# The package's own list of its zones, one a line (what zoneinfo.available_timezones() reads from it).
_PACKAGE: Final = "tzdata"
_LIST: Final = "zones"


def names() -> frozenset[str]:
    """Every zone name of the pinned tzdata package, whatever the host has."""
    text = files(_PACKAGE).joinpath(_LIST).read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def use_pinned_data() -> None:
    """From now on this process loads every zone from the pinned tzdata package, none from the host.

    Process-wide (zoneinfo has one search path), so call it once at start-up, before any zone is loaded:
    a zone loaded earlier stays cached with the host's data until ``clear_cache``, which this calls too."""
    zoneinfo.reset_tzpath(to=())
    zoneinfo.ZoneInfo.clear_cache()
