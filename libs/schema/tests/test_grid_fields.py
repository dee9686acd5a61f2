"""Migration 0006 (issue 13.6): the grid's fields in storage, nullable, with the contract's ranges as
CHECK constraints, so that no writer (a restore, a bulk load) stores what ingest would refuse."""

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from p1_contracts.models import Sample
from p1_schema.bulk import load_device

T0 = datetime(2026, 3, 1, tzinfo=UTC)
GRID = (
    "current_a",
    "frequency_hz",
    "power_fail_count",
    "long_power_fail_count",
    *(f"voltage_{kind}_l{n}_count" for kind in ("sag", "swell") for n in (1, 2, 3)),
    "gas_unique_id",
    "water_unique_id",
)


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("power_fail_count", -1, "samples_power_fail_count_range"),
        ("voltage_swell_l3_count", 100000, "samples_voltage_swell_l3_count_range"),
        ("frequency_hz", 1e9, "samples_frequency_hz_range"),
        ("frequency_hz", 44.9, "samples_frequency_hz_range"),
        ("current_a", -10000.5, "samples_current_a_range"),
        ("gas_unique_id", "SIM-G", "samples_gas_unique_id_hex"),
        ("water_unique_id", "", "samples_water_unique_id_hex"),
    ],
)
async def test_values_outside_the_contract_are_refused_by_the_database(
    database_url: str, column: str, value: Any, constraint: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.CheckViolationError, match=constraint):
            await conn.execute(
                f"INSERT INTO samples (device_id, ts, power_w, import_kwh, export_kwh, {column})"
                " VALUES ($1, $2, 0, 0, 0, $3)",
                f"grid-{uuid.uuid4().hex[:8]}",
                T0,
                value,
            )
    finally:
        await conn.close()


async def test_the_ends_of_each_range_are_stored(database_url: str) -> None:
    dev = f"grid-{uuid.uuid4().hex[:8]}"
    readings: dict[str, list[object]] = {
        "ts": [T0, T0.replace(second=1)],
        "power_w": [0.0, 0.0],
        "import_kwh": [1.0, 1.0],
        "export_kwh": [0.0, 0.0],
        "current_a": [-10000.0, 10000.0],
        "frequency_hz": [45.0, 65.0],
        **{name: [0, 99999] for name in GRID if name.endswith("_count")},
        "gas_unique_id": ["0", "F" * 128],
        "water_unique_id": [None, "abcdef0123456789"],
    }
    conn = await asyncpg.connect(database_url)
    try:
        await load_device(conn, dev, readings)  # the bulk loader takes the new columns as any other
        select = f"SELECT {', '.join(GRID)} FROM samples WHERE device_id = $1 ORDER BY ts"
        rows = await conn.fetch(select, dev)
    finally:
        await conn.close()
    assert [dict(r) for r in rows] == [{name: readings[name][i] for name in GRID} for i in (0, 1)]
    assert set(GRID) <= set(Sample.model_fields)  # each column a contract field
