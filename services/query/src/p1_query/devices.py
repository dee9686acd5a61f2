"""The devices table as query reads it: which devices exist, and the device list's answer.

A device's meter columns are the contract's ``Meter`` fields prefixed ``meter_`` (migration 0001), its
edge's report the ``EdgeState`` fields prefixed ``edge_`` with ``edge_reported_at`` (migration 0009,
written by ingest with the batch that carried it), so the list's statement and answer are built from
``fields.METER_FIELDS`` and ``fields.EDGE_FIELDS``.
"""

from typing import Final

import asyncpg
from pydantic import TypeAdapter
from pydantic_core import to_json

from p1_contracts import timeform
from p1_contracts.models import Device
from p1_query.db import Conn
from p1_query.fields import EDGE_FIELDS, EDGE_WHOLES, METER_FIELDS, METER_WHOLES
from p1_query.forms import whole

_METER_COLUMNS: Final = tuple(f"meter_{name}" for name in METER_FIELDS)
_EDGE_COLUMNS: Final = tuple(f"edge_{name}" for name in EDGE_FIELDS)
_LIST_SQL: Final = f"""
SELECT device_id, first_seen, last_seen, {", ".join(_METER_COLUMNS)},
       {", ".join(_EDGE_COLUMNS)}, edge_reported_at
  FROM devices WHERE last_seen IS NOT NULL AND first_seen IS NOT NULL
   AND ($1::text[] IS NULL OR device_id = ANY($1::text[]))
 ORDER BY device_id"""
_DEVICES: Final = TypeAdapter(list[Device])


async def device_exists(conn: Conn, device_id: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = $1)", device_id))


async def list_devices(conn: Conn, scope: frozenset[str] | None) -> list[asyncpg.Record]:
    """Devices with readings, ordered by id; ``scope`` None means every device."""
    return await conn.fetch(_LIST_SQL, None if scope is None else sorted(scope))


def _meter(row: asyncpg.Record) -> dict[str, object] | None:
    if row["meter_serial"] is None:
        return None
    values = {name: row[column] for name, column in zip(METER_FIELDS, _METER_COLUMNS, strict=True)}
    return {name: whole(value) if name in METER_WHOLES else value for name, value in values.items()}


def _edge(row: asyncpg.Record) -> dict[str, object] | None:
    """The edge's latest report, or None until one came (a report is stored whole: migration 0009)."""
    if row["edge_reported_at"] is None:
        return None
    values = {name: row[column] for name, column in zip(EDGE_FIELDS, _EDGE_COLUMNS, strict=True)}
    report = {name: whole(value) if name in EDGE_WHOLES else value for name, value in values.items()}
    report["reported_at"] = timeform.instant(row["edge_reported_at"])
    return report


def devices_json(rows: list[asyncpg.Record]) -> bytes:
    """The device list in answer form (``forms``): times as instants, whole numbers as integers;
    checked against the contract before it is sent."""
    answer = [
        {
            "device_id": row["device_id"],
            "first_seen": timeform.instant(row["first_seen"]),
            "last_seen": timeform.instant(row["last_seen"]),
            "meter": _meter(row),
            "edge": _edge(row),
        }
        for row in rows
    ]
    body = to_json(answer)
    _DEVICES.validate_json(body)
    return body
