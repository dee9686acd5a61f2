"""The names of query's Redis entries, and the device version every cached answer is keyed by.

An answer's key holds everything the answer depends on: the device, the version of its readings
(``DeviceVersion``), the kind of answer and its parameters. A key therefore never needs invalidating:
new readings make new keys, and old ones expire (every query key has a TTL, ``cache``).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from p1_query.db import Conn


def answer_key(device_id: str, version: str, kind: str, params: str) -> str:
    return f"p1:q:{device_id}:{version}:{kind}:{params}"


def budget_key(owner: str, ttl: int, now: float) -> str:
    """The counter of ``owner``'s bytes stored with lifetime ``ttl`` in the current window of ``ttl``."""
    return f"p1:qbudget:{owner}:{ttl}:{int(now // ttl)}"


# The series answer's shape: a new one when its fields or their meaning change, so that answers cached
# before (up to 24 h) are never served as the new shape. 2: tariff registers, gas and water by their
# meters' own time and epochs (issue 13).
SERIES_SHAPE: Final = "3"  # 3: import_cost_eur and export_revenue_eur (issue 15)


def series_params(first: datetime, last: datetime, bucket: str, tz: str) -> str:
    """A series' parameters: its shape, its outer bucket boundaries (any start and end within them give
    the same answer), bucket and zone."""
    return f"{SERIES_SHAPE}|{first.isoformat()}|{last.isoformat()}|{bucket}|{tz}"


def capacity_params(month: str, tz: str, price: float) -> str:
    # The price is part of the answer: a new price must not be hidden by old cached answers.
    return f"{month}|{tz}|{price}"


def bill_params(month: str, tz: str, capacity_price: float) -> str:
    # The ledger's capacity price is part of the bill when a plan names none (as in capacity_params).
    return f"{month}|{tz}|{capacity_price}"


def priced(version: str, tariff_revision: int) -> str:
    """The version text of an answer carrying costs (series, bill): also keyed by the tariff revision
    (migration 0010), which every load of plans or prices changes, so a new plan reaches cached answers
    at once."""
    return f"{version}T{tariff_revision}"


def month_tops_params(year: int, month: int, tz: str) -> str:
    return f"{year:04d}-{month:02d}|{tz}"


@dataclass(frozen=True, slots=True)
class DeviceVersion:
    """What every answer derived from a device's readings depends on (migration 0003): the newest
    reading's time and the count of commits that stored older readings (late data)."""

    last_ts: datetime | None
    late_writes: int
    # The oldest of the gas and water meters' newest good readings (migration 0007): their readings
    # come later than the poll (a DSMR 4 hour's gas an hour later), so a range is final only up to it.
    meters_ts: datetime | None = None
    meter_peak_writes: int = 0  # commits that changed the meter's reported peaks (migration 0008)
    tariff_revision: int = 0  # loads of tariff plans or prices (migration 0010): ``priced``

    def of_range(self, end: datetime) -> tuple[str, bool]:
        """(version text for a cache key, final) of an answer about readings before ``end``: final
        when the newest reading (of every meter) is at or after ``end`` — then only late data or a
        meter's peak report can change the answer."""
        settled = self.last_ts is not None and end <= self.last_ts
        if settled and (self.meters_ts is None or end <= self.meters_ts):
            return f"L{self.late_writes}P{self.meter_peak_writes}", True
        stamp = "none" if self.last_ts is None else f"{self.last_ts.timestamp():.6f}"
        return f"L{self.late_writes}P{self.meter_peak_writes}@{stamp}", False


async def device_version(conn: Conn, device_id: str) -> DeviceVersion | None:
    """None for an unknown device."""
    row = await conn.fetchrow(_VERSION_SQL, device_id)
    if row is None:
        return None
    return DeviceVersion(
        row["last_ts"],
        int(row["late_writes"]),
        row["meters_ts"],
        int(row["meter_peak_writes"]),
        int(row["tariff_revision"] or 0),
    )


_VERSION_SQL: Final = """
SELECT last_ts, late_writes, meter_peak_writes,
       (SELECT min(good_ts) FROM meter_volume_state s WHERE s.device_id = d.device_id) AS meters_ts,
       (SELECT revision FROM tariff_revision) AS tariff_revision
  FROM devices d WHERE device_id = $1"""
