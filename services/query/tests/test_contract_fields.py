"""Issue 12 §3: the fields query reads and writes come from the generated contract models, and the
statements select exactly them (drift tests against the real database); a new Sample field reaches
realtime and the raw export with no change to query (shown with a real query process whose contract
has one field more, and a table with that column)."""

import csv
import io
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from query_scenes import query_env
from redis.asyncio import Redis

from p1_contracts.models import Device, Realtime, Sample, SeriesPoint
from p1_contracts.patterns import DEVICE_ID_PATTERN
from p1_query.fields import (
    DEVICE_ID_MAX_LENGTH,
    METER_WHOLES,
    POINT_FIELDS,
    SAMPLE_FIELDS,
    SAMPLE_TIMES,
    SAMPLE_WHOLES,
    whole_fields,
)
from p1_query.forms import csv_rows
from p1_query.groups import GROUP_COLUMNS, GROUP_VALUES, GROUPS_SQL, Group
from p1_query.samples import RAW_EXPORT_COLUMNS, RAW_EXPORT_SQL, latest_sample
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, free_port

ALL = {"Authorization": "Bearer tok-all"}


def test_the_field_lists_are_the_models() -> None:
    assert tuple(Sample.model_fields) == SAMPLE_FIELDS
    assert (*Sample.model_fields, "flag") == RAW_EXPORT_COLUMNS
    assert tuple(SeriesPoint.model_fields) == POINT_FIELDS
    # What realtime adds to a Sample is what the contract's Realtime adds (forms.reading + realtime).
    added = [name for name in Realtime.model_fields if name not in Sample.model_fields]
    assert added == ["device_id", "age_s"]
    assert {"ts", "month_peak_ts", "gas_ts", "water_ts"} == SAMPLE_TIMES
    counts = {name for name in Sample.model_fields if name.endswith("_count")}
    assert len(counts) == 8  # power failures, long ones, sags and swells per phase (issue 13.6)
    assert (SAMPLE_WHOLES, METER_WHOLES, whole_fields(SeriesPoint)) == (
        {"tariff", *counts},
        {"protocol_version"},
        {"samples"},
    )
    schema = Device.model_json_schema()["properties"]["device_id"]
    assert (schema["pattern"], schema["maxLength"]) == (DEVICE_ID_PATTERN, DEVICE_ID_MAX_LENGTH)


def test_group_and_its_statement_are_one_declaration() -> None:
    names = [field.name for field in fields(Group)]
    assert names[:2] == ["i", "epoch"]
    assert tuple(names[2:]) == GROUP_VALUES
    assert set(GROUP_COLUMNS) == set(GROUP_VALUES)  # no expression without a field


async def test_statements_select_exactly_the_contracts_fields(loaded: str) -> None:
    """Run against the real schema: the columns each statement returns, by name and in order."""
    bounds = [datetime(2026, 3, 29, hour, tzinfo=UTC) for hour in (0, 6, 12)]
    conn = await asyncpg.connect(loaded)
    try:
        latest = await latest_sample(conn, "q-dst")
        page = await conn.fetch(RAW_EXPORT_SQL, "q-dst", bounds[0], bounds[-1], 2)
        groups = {
            source: await conn.fetch(sql, "q-dst", bounds, bounds[0], bounds[-1], len(bounds) - 1)
            for source, sql in GROUPS_SQL.items()
        }
        columns = {
            row["column_name"]
            for row in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'samples'"
            )
        }
    finally:
        await conn.close()
    assert latest is not None
    assert tuple(latest.keys()) == tuple(Sample.model_fields)
    assert tuple(page[0].keys()) == (*Sample.model_fields, "flag")
    for source, rows in groups.items():
        assert [tuple(row.keys()) for row in rows[:1]] == [tuple(f.name for f in fields(Group))], source
        assert Group(*rows[0]).n > 0, source
    assert set(Sample.model_fields) <= columns  # a column of the same name for every field


def test_csv_cells_are_the_json_text_of_each_value() -> None:
    """forms.csv_rows writes through the JSON serializer: read back with the csv module, every cell is
    the JSON text of its value (a number as in every JSON answer, a time as timeform's, null empty)."""
    moment = datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=UTC)
    rows = [
        (moment, 1e-06, 1e16, 0.1 + 0.2, -0.0, 2, None, "suspect"),
        (datetime(2026, 1, 1, tzinfo=UTC), 7200.0, 5e-05, 123456789.125, 0.0, 0, None, None),
    ]
    parsed = list(csv.reader(io.StringIO(csv_rows(rows).decode())))
    times, numbers = ["2026-01-01T00:00:00.000005Z"], ["1e-6", "1e+16", "0.30000000000000004", "-0.0", "2"]
    assert parsed[0] == [*times, *numbers, "", "suspect"]
    assert parsed[1] == ["2026-01-01T00:00:00Z", "7200.0", "0.00005", "123456789.125", "0.0", "0", "", ""]
    assert [json.loads(cell) for cell in parsed[1][1:6]] == [7200.0, 5e-05, 123456789.125, 0.0, 0]
    assert csv_rows([]) == b""
    # A meter's id (hex digits only, by the contract's pattern) is a bare cell too.
    assert csv_rows([(2, "4E474C5944", None, "0a")]) == b"2,4E474C5944,,0a\r\n"


# ---- a new Sample field -------------------------------------------------------------------------------

NEW_FIELD = "solar_w"
DEVICE = "q-newfield"
REQUIRED = [name for name, info in Sample.model_fields.items() if info.is_required()]
# The contract as `make contracts` would make it with one more Sample property, installed before query
# is imported: query's code is the repository's, unchanged.
LAUNCHER = f"""
import sys
from collections.abc import AsyncIterator
from typing import Annotated

from pydantic import Field

import p1_contracts.models as models


class Sample(models.Sample):
    {NEW_FIELD}: Annotated[float | None, Field(ge=0.0, le=1000000.0)] = None


models.Sample = Sample
from p1_query.cli import main

sys.exit(main(sys.argv[1:]))
"""
# The migration that would come with it, in a schema of its own so that no other test sees the column.
SCHEMA_SQL = f"""
CREATE SCHEMA newfield;
CREATE TABLE newfield.samples (LIKE public.samples INCLUDING DEFAULTS);
ALTER TABLE newfield.samples ADD COLUMN {NEW_FIELD} float8;
CREATE TABLE newfield.devices (LIKE public.devices INCLUDING DEFAULTS);
INSERT INTO newfield.devices (device_id, first_seen, last_seen, last_ts)
VALUES ('{DEVICE}', '2026-04-02T10:00:00Z', '2026-04-02T10:00:01Z', '2026-04-02T10:00:01Z');
INSERT INTO newfield.samples (device_id, ts, power_w, import_kwh, export_kwh, {NEW_FIELD})
VALUES ('{DEVICE}', '2026-04-02T10:00:00Z', 100.0, 1.0, 0.0, NULL),
       ('{DEVICE}', '2026-04-02T10:00:01Z', 200.0, 1.5, 0.0, 321.5);
"""


@pytest.fixture
async def new_field_database(loaded: str) -> AsyncIterator[str]:
    conn = await asyncpg.connect(loaded)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS newfield CASCADE")
        await conn.execute(SCHEMA_SQL)
    finally:
        await conn.close()
    yield f"{loaded}?search_path=newfield,public"  # asyncpg: a session setting of every connection
    conn = await asyncpg.connect(loaded)
    try:
        await conn.execute("DROP SCHEMA newfield CASCADE")
    finally:
        await conn.close()


async def test_a_new_sample_field_reaches_realtime_and_the_raw_export_untouched(
    new_field_database: str, redis_url: str, redis_client: Redis, tmp_path: Path
) -> None:
    launcher = tmp_path / "query_with_a_new_field.py"
    launcher.write_text(LAUNCHER)
    port = free_port()
    env = query_env(new_field_database, redis_url)
    proc = ServiceProcess([sys.executable, str(launcher), "serve", "--port", str(port)], env, port).start()
    try:
        async with httpx.AsyncClient(base_url=proc.base_url, headers=ALL, timeout=10) as client:
            await _realtime_has_the_field(client, redis_client)
            await _raw_export_has_the_field(client)
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()


async def _realtime_has_the_field(client: httpx.AsyncClient, redis_client: Redis) -> None:
    realtime = f"/v1/devices/{DEVICE}/realtime"
    from_postgres = (await client.get(realtime)).json()
    assert list(from_postgres) == [*REQUIRED, NEW_FIELD, "device_id", "age_s"]
    assert from_postgres[NEW_FIELD] == 321.5
    latest = {"ts": "2026-04-02T10:00:02Z", "power_w": 1.0, "import_kwh": 2.0, "export_kwh": 0.0}
    await redis_client.set(f"p1:latest:{DEVICE}", json.dumps({**latest, NEW_FIELD: 12.0}))
    try:
        from_redis = (await client.get(realtime)).json()
    finally:
        await redis_client.delete(f"p1:latest:{DEVICE}")
    assert (from_redis["ts"], from_redis[NEW_FIELD]) == ("2026-04-02T10:00:02Z", 12.0)


async def _raw_export_has_the_field(client: httpx.AsyncClient) -> None:
    window = {"start": "2026-04-02T10:00:00Z", "end": "2026-04-02T10:01:00Z"}
    export = f"/v1/devices/{DEVICE}/export"
    header, first, second = (await client.get(export, params=window)).text.splitlines()
    assert header.split(",") == [*Sample.model_fields, NEW_FIELD, "flag"]
    assert (first.split(",")[-2:], second.split(",")[-2:]) == (["", ""], ["321.5", ""])
    rows = (await client.get(export, params={**window, "format": "ndjson"})).text.splitlines()
    assert [json.loads(line)[NEW_FIELD] for line in rows] == [None, 321.5]


def test_only_hex_texts_join_the_csv_shortcut() -> None:
    """A text field is written as a bare CSV cell only when the contract allows hex digits alone (the
    meters' ids); any other text field is refused at import, never written as a malformed file."""
    from typing import Annotated

    from pydantic import BaseModel, Field

    from p1_query.fields import _numbers_and_times

    class Hex(BaseModel):
        gas_unique_id: Annotated[str | None, Field(pattern="^[0-9A-Fa-f]{1,128}$")] = None

    class Free(BaseModel):
        name: Annotated[str | None, Field(pattern="^[A-Za-z ,]{1,128}$")] = None

    class Bare(BaseModel):
        note: str | None = None

    assert _numbers_and_times(Hex) == ("gas_unique_id",)
    for model in (Free, Bare):
        with pytest.raises(TypeError, match="only numbers, date-times and hex texts"):
            _numbers_and_times(model)
