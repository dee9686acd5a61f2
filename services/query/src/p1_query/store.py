"""Reads from PostgreSQL. Every statement is timed into ``p1_query_db_seconds`` by operation.

The schema is the ingest service's (``docs`` in notes/shared-contract.md): ``samples`` raw, and the
``rollup_15m`` / ``rollup_1h`` rows per (device, UTC bucket, counter epoch) with the first and last
reading's time and counter values; ``rollup_1d`` the same per local day of the zone in ``rollup_1d_zone``.
"""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

import asyncpg
from prometheus_client import CollectorRegistry, Histogram

from .buckets import Source

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

DB_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# The columns of a Sample, in contract order; samples has them under the same names.
SAMPLE_FIELDS: Final = (
    "ts",
    "power_w",
    "import_kwh",
    "export_kwh",
    "import_t1_kwh",
    "import_t2_kwh",
    "import_t3_kwh",
    "import_t4_kwh",
    "export_t1_kwh",
    "export_t2_kwh",
    "export_t3_kwh",
    "export_t4_kwh",
    "tariff",
    "power_l1_w",
    "power_l2_w",
    "power_l3_w",
    "voltage_l1_v",
    "voltage_l2_v",
    "voltage_l3_v",
    "current_l1_a",
    "current_l2_a",
    "current_l3_a",
    "avg_power_15m_w",
    "month_peak_w",
    "month_peak_ts",
    "gas_m3",
    "gas_ts",
    "water_m3",
    "water_ts",
)


class DbTimer:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._hist = Histogram(
            "p1_query_db_seconds",
            "PostgreSQL time of the query service by operation.",
            ["operation"],
            buckets=DB_BUCKETS,
            registry=registry,
        )

    @asynccontextmanager
    async def time(self, operation: str) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._hist.labels(operation).observe(time.perf_counter() - started)


@dataclass(slots=True)
class Group:
    """Readings of one counter epoch within one bucket (index ``i``; −1 and N are the neighbours
    just outside the range, kept only as interpolation anchors). The field order is the column order
    of ``_groups_sql``: ``fetch_groups`` builds groups positionally."""

    i: int
    epoch: int
    n: int
    power_sum: float | None
    power_min: float | None
    power_max: float | None
    power_import_sum: float | None
    first_ts: float
    last_ts: float
    import_first: float | None
    import_last: float | None
    export_first: float | None
    export_last: float | None
    gas_first: float | None
    gas_last: float | None
    water_first: float | None
    water_last: float | None
    avg_power_15m_w: float | None
    month_peak_w: float | None


# Aggregating whole rollup rows into a bigger bucket is exact: sums add, minima/maxima merge, and
# within an epoch the first reading has the smallest counter and the last the largest. Series do not
# use the meter's quarter average or month peak (capacity reads rollup_15m rows as they are), so the
# aggregates leave them out: they cost more than the rest of the statement.
_ROLLUP_AGG: Final = """
    sum(n)::int AS n, sum(power_sum) AS power_sum, min(power_min) AS power_min,
    max(power_max) AS power_max, sum(power_import_sum) AS power_import_sum,
    extract(epoch FROM min(first_ts))::float8 AS first_ts,
    extract(epoch FROM max(last_ts))::float8 AS last_ts,
    min(import_kwh_min) AS import_first, max(import_kwh_max) AS import_last,
    min(export_kwh_min) AS export_first, max(export_kwh_max) AS export_last,
    min(gas_m3_min) AS gas_first, max(gas_m3_max) AS gas_last,
    min(water_m3_min) AS water_first, max(water_m3_max) AS water_last,
    NULL::float8 AS avg_power_15m_w, NULL::float8 AS month_peak_w"""

_ROLLUP_ROW: Final = """
    n, power_sum, power_min, power_max, power_import_sum,
    extract(epoch FROM first_ts)::float8 AS first_ts, extract(epoch FROM last_ts)::float8 AS last_ts,
    import_kwh_min AS import_first, import_kwh_max AS import_last,
    export_kwh_min AS export_first, export_kwh_max AS export_last,
    gas_m3_min AS gas_first, gas_m3_max AS gas_last, water_m3_min AS water_first,
    water_m3_max AS water_last, avg_power_15m_w, month_peak_w"""

_RAW_AGG: Final = """
    count(*)::int AS n, sum(power_w) AS power_sum, min(power_w) AS power_min,
    max(power_w) AS power_max, sum(greatest(power_w, 0)) AS power_import_sum,
    extract(epoch FROM min(ts))::float8 AS first_ts, extract(epoch FROM max(ts))::float8 AS last_ts,
    min(import_kwh) AS import_first, max(import_kwh) AS import_last,
    min(export_kwh) AS export_first, max(export_kwh) AS export_last,
    min(gas_m3) AS gas_first, max(gas_m3) AS gas_last,
    min(water_m3) AS water_first, max(water_m3) AS water_last,
    NULL::float8 AS avg_power_15m_w, NULL::float8 AS month_peak_w"""

_RAW_ROW: Final = """
    1 AS n, power_w AS power_sum, power_w AS power_min, power_w AS power_max,
    greatest(power_w, 0) AS power_import_sum, extract(epoch FROM ts)::float8 AS first_ts,
    extract(epoch FROM ts)::float8 AS last_ts,
    import_kwh AS import_first, import_kwh AS import_last, export_kwh AS export_first,
    export_kwh AS export_last, gas_m3 AS gas_first, gas_m3 AS gas_last, water_m3 AS water_first,
    water_m3 AS water_last, avg_power_15m_w, month_peak_w"""


def _groups_sql(source: Source) -> str:
    if source == "raw":
        table, tcol, agg, row = "samples", "ts", _RAW_AGG, _RAW_ROW
    else:
        table, tcol, agg, row = f"rollup_{source}", "bucket", _ROLLUP_AGG, _ROLLUP_ROW
    # One round trip: the range's buckets (width_bucket maps a time to its bucket by binary search
    # over the boundaries), plus the last reading group before and the first after the range, which
    # anchor the interpolation at the range's own ends.
    # Raw readings flagged by ingest's integrity check (suspect, glitch) count nowhere; rollups never
    # hold them.
    good = " AND flag IS NULL" if source == "raw" else ""
    return f"""
    (SELECT width_bucket({tcol}, $2::timestamptz[]) - 1 AS i, epoch, {agg}
       FROM {table} WHERE device_id = $1 AND {tcol} >= $3 AND {tcol} < $4{good}
      GROUP BY 1, 2)
    UNION ALL
    (SELECT -1 AS i, epoch, {row} FROM {table} WHERE device_id = $1 AND {tcol} < $3{good}
      ORDER BY {tcol} DESC, epoch DESC LIMIT 1)
    UNION ALL
    (SELECT $5::int AS i, epoch, {row} FROM {table} WHERE device_id = $1 AND {tcol} >= $4{good}
      ORDER BY {tcol}, epoch LIMIT 1)
    ORDER BY i, epoch"""


_GROUPS_SQL: Final = {s: _groups_sql(s) for s in ("raw", "15m", "1h", "1d")}


async def fetch_groups(conn: Conn, device_id: str, source: Source, bounds: list[datetime]) -> list[Group]:
    """Groups per (bucket index, epoch) of the buckets delimited by ``bounds``, ordered by time."""
    rows = await conn.fetch(_GROUPS_SQL[source], device_id, bounds, bounds[0], bounds[-1], len(bounds) - 1)
    # The statement's columns are Group's fields in order, times already as UTC seconds: decoding a
    # timestamp and converting it back cost as much as the rest of a month of quarters.
    return [Group(*r) for r in rows]


class QuarterRow(NamedTuple):
    """A rollup_15m row as capacity needs it; times in UTC seconds. ``i`` is the quarter's index from
    the window's start (−1 for the anchor row before the window)."""

    i: int
    epoch: int
    n: int
    power_import_sum: float
    first_ts: float
    last_ts: float
    import_first: float | None
    import_last: float | None
    avg_power_15m_w: float | None
    month_peak_w: float | None


_QUARTER_COLS: Final = """
    floor((extract(epoch FROM bucket) - $4::float8) / 900)::int AS i, epoch, n, power_import_sum,
    extract(epoch FROM first_ts)::float8, extract(epoch FROM last_ts)::float8,
    import_kwh_min, import_kwh_max, avg_power_15m_w, month_peak_w"""


def _quarters_with_neighbours(cols: str) -> str:
    """``cols`` of the rollup_15m rows of device $1 in [$2, $3), of the last row before and of the first
    after: the readings that bracket the range's first and last quarter."""
    return f"""
    (SELECT {cols} FROM rollup_15m WHERE device_id = $1 AND bucket >= $2 AND bucket < $3)
    UNION ALL
    (SELECT {cols} FROM rollup_15m WHERE device_id = $1 AND bucket < $2
      ORDER BY bucket DESC, epoch DESC LIMIT 1)
    UNION ALL
    (SELECT {cols} FROM rollup_15m WHERE device_id = $1 AND bucket >= $3
      ORDER BY bucket, epoch LIMIT 1)"""


# Twelve months are ~35,000 quarters: only the columns capacity uses, times as plain numbers, because
# decoding is what such a fetch costs.
_QUARTERS_SQL: Final = f"""{_quarters_with_neighbours(_QUARTER_COLS)}
    ORDER BY 1, 2"""


async def fetch_quarters(conn: Conn, device_id: str, start: datetime, end: datetime) -> list[QuarterRow]:
    """The rollup_15m rows of [start, end) (UTC quarter-aligned) and their neighbours, in time order:
    the input of ``capacity.quarter_demands``, the reference the SQL demand is tested against."""
    rows = await conn.fetch(_QUARTERS_SQL, device_id, start, end, start.timestamp())
    return [QuarterRow(*r) for r in rows]


_QUARTER_SRC: Final = """
    bucket, epoch, n, power_import_sum, first_ts, last_ts, import_kwh_min AS f, import_kwh_max AS l,
    avg_power_15m_w AS a"""

# The quarter-hour demand rules of capacity.quarter_demands (the reference, which a test holds this
# equal to) in SQL, so that twelve months (~35,000 quarters) never travel to Python: (1) the meter's
# average at a last reading ≤ 60 s before the quarter's end; (2) the import counter interpolated at
# both ends, when the quarter is one epoch's and the rows around it are of that epoch; (3) the mean of
# positive power. lag/lead over (bucket, epoch) are the last reading before and the first after.
QUARTER_DEMAND_SQL: Final = f"""
WITH x AS ({_quarters_with_neighbours(_QUARTER_SRC)}
), r AS (
    SELECT *,
           lag(epoch) OVER w AS pe, lag(last_ts) OVER w AS pt, lag(l) OVER w AS pv,
           lead(epoch) OVER w AS ne, lead(first_ts) OVER w AS nt, lead(f) OVER w AS nv,
           count(*) OVER q AS k, sum(n) OVER q AS qn, sum(power_import_sum) OVER q AS qpos,
           -- epochs follow each other in time: a quarter's last row by epoch holds its last reading
           lead(bucket) OVER w IS DISTINCT FROM bucket AS latest,
           extract(epoch FROM bucket + interval '15 minutes' - last_ts)::float8 AS to_end
      FROM x
    WINDOW w AS (ORDER BY bucket, epoch), q AS (PARTITION BY bucket)
), d AS (
    SELECT bucket,
           CASE
             WHEN a IS NOT NULL AND to_end <= 60 THEN greatest(a, 0) / 1000
             WHEN k = 1 AND f IS NOT NULL AND l IS NOT NULL AND ne = epoch AND nv IS NOT NULL
                  AND (first_ts <= bucket OR (pe = epoch AND pv IS NOT NULL)) THEN
               greatest(0,
                 l + (nv - l) * to_end / extract(epoch FROM nt - last_ts)::float8
                 - CASE WHEN first_ts <= bucket THEN f
                        ELSE pv + (f - pv) * extract(epoch FROM bucket - pt)::float8
                                           / extract(epoch FROM first_ts - pt)::float8 END) * 4
             ELSE qpos / qn / 1000
           END AS kw
      FROM r
     WHERE latest AND bucket >= $2 AND bucket < $3 AND qn > 0
)"""

# Each local month's TOP_QUARTERS highest quarters (ties: the earlier), which is all the ledger needs.
_TOP_QUARTERS_SQL: Final = f"""{QUARTER_DEMAND_SQL}
SELECT extract(epoch FROM bucket)::float8 AS start, kw FROM (
    SELECT bucket, kw, row_number() OVER (
               PARTITION BY date_trunc('month', bucket AT TIME ZONE $4) ORDER BY kw DESC, bucket) AS rank
      FROM d) t
 WHERE rank <= $5
 ORDER BY bucket"""

_METER_PEAK_SQL: Final = """
SELECT month_peak_w FROM rollup_15m
 WHERE device_id = $1 AND bucket >= $2::timestamptz - interval '15 minutes' AND bucket < $3
   AND last_ts >= $2 AND last_ts < $3 AND month_peak_w IS NOT NULL
 ORDER BY bucket DESC, last_ts DESC LIMIT 1"""


async def top_quarters(
    conn: Conn, device_id: str, start: datetime, end: datetime, tz: str, per_month: int
) -> list[tuple[float, float]]:
    """(UTC start seconds, kW) of each local month's highest quarters in [start, end), in time order."""
    rows = await conn.fetch(_TOP_QUARTERS_SQL, device_id, start, end, tz, per_month)
    return [(r["start"], r["kw"]) for r in rows]


async def meter_month_peak_w(conn: Conn, device_id: str, start: datetime, end: datetime) -> float | None:
    """The meter's own month peak at the month's last reading that carries one."""
    value = await conn.fetchval(_METER_PEAK_SQL, device_id, start, end)
    return None if value is None else float(value)


class DailyZone:
    """The zone whose local days ``rollup_1d`` holds (migration 0002), read on first use — the database
    may be down when the service starts — and then kept: only a migration that rebuilds rollup_1d can
    change it, and that requires restarting the query service. A schema without it (migration 0002 not
    applied yet) is asked again after ``retry_s``; meanwhile days come from rollup_1h, as exact."""

    def __init__(self, retry_s: float = 60.0) -> None:
        self._zone: ZoneInfo | None = None
        self._retry_at = 0.0
        self._retry_s = retry_s

    async def get(self, conn: Conn) -> ZoneInfo | None:
        if self._zone is not None or time.monotonic() < self._retry_at:
            return self._zone
        name = None
        if await conn.fetchval("SELECT to_regclass('rollup_1d_zone')") is not None:
            name = await conn.fetchval("SELECT tz FROM rollup_1d_zone")
        if name is None:
            self._retry_at = time.monotonic() + self._retry_s
            return None
        self._zone = ZoneInfo(str(name))
        return self._zone


@dataclass(frozen=True, slots=True)
class DeviceVersion:
    """What every answer derived from a device's readings depends on (migration 0003): the newest
    reading's time and the count of commits that stored older readings (late data)."""

    last_ts: datetime | None
    late_writes: int

    def of_range(self, end: datetime) -> tuple[str, bool]:
        """(version text for a cache key, final) of an answer about readings before ``end``: final
        when the newest reading is at or after ``end`` — then only late data can change the answer."""
        if self.last_ts is not None and end <= self.last_ts:
            return f"L{self.late_writes}", True
        stamp = "none" if self.last_ts is None else f"{self.last_ts.timestamp():.6f}"
        return f"L{self.late_writes}@{stamp}", False


async def device_version(conn: Conn, device_id: str) -> DeviceVersion | None:
    """None for an unknown device."""
    row = await conn.fetchrow("SELECT last_ts, late_writes FROM devices WHERE device_id = $1", device_id)
    return None if row is None else DeviceVersion(row["last_ts"], int(row["late_writes"]))


async def device_exists(conn: Conn, device_id: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = $1)", device_id))


async def list_devices(conn: Conn, scope: frozenset[str] | None) -> list[asyncpg.Record]:
    """Devices with readings, ordered by id; ``scope`` None means every device."""
    sql = """SELECT device_id, first_seen, last_seen, meter_serial, meter_model, meter_protocol_version
               FROM devices WHERE last_seen IS NOT NULL AND first_seen IS NOT NULL
                AND ($1::text[] IS NULL OR device_id = ANY($1::text[]))
              ORDER BY device_id"""
    return await conn.fetch(sql, None if scope is None else sorted(scope))


_LATEST_SQL: Final = (
    f"SELECT {', '.join(SAMPLE_FIELDS)} FROM samples WHERE device_id = $1 AND flag IS NULL"
    " ORDER BY ts DESC LIMIT 1"
)


async def latest_sample(conn: Conn, device_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_LATEST_SQL, device_id)


_RAW_RANGE: Final = "FROM samples WHERE device_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts"
# The raw export gives every stored reading, with ingest's integrity flag last (empty/null: good;
# 'suspect' or 'glitch': counted nowhere), so a reader can see why a reading was ignored.
RAW_EXPORT_COLUMNS: Final = (*SAMPLE_FIELDS, "flag")
# One page of an export ($4 rows at most); the next page starts just after this one's last ts.
RAW_EXPORT_SQL: Final = f"SELECT {', '.join(RAW_EXPORT_COLUMNS)} {_RAW_RANGE} LIMIT $4"
