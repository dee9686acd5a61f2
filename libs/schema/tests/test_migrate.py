"""The migration runner: every migration once and in order, however many runs race; ``up_to``; the hook
inside each migration's transaction; and no migration recorded while devices wait for a rebuild."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from p1_schema.migrate import REBUILD_QUEUE, Migration, RebuildsPending, available_migrations, migrate
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

NAMES = [m.name for m in available_migrations()]


@pytest.fixture
async def empty_db() -> AsyncIterator[str]:
    url = await create_database(pg_server_url(), prefix="p1_schema")
    try:
        yield url
    finally:
        await drop_database(url)


async def _recorded(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY version")]
    finally:
        await conn.close()


def test_the_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in available_migrations()]
    assert versions == list(range(1, len(versions) + 1))
    assert all(m.name.startswith(f"{m.version:04d}_") and m.sql.strip() for m in available_migrations())


async def test_racing_runs_apply_each_migration_once_in_order(empty_db: str) -> None:
    runs = await asyncio.gather(*(migrate(empty_db) for _ in range(3)))
    assert sorted(name for run in runs for name in run) == sorted(NAMES)  # one run applied them all
    assert NAMES in runs
    assert await _recorded(empty_db) == NAMES
    assert await migrate(empty_db) == []


async def test_up_to_stops_at_a_version_and_the_rest_follows(empty_db: str) -> None:
    assert await migrate(empty_db, up_to=2) == NAMES[:2]
    assert await migrate(empty_db) == NAMES[2:]


async def test_the_hook_runs_inside_each_migrations_transaction(empty_db: str) -> None:
    seen: list[tuple[str, bool, int]] = []

    async def hook(conn: "asyncpg.Connection[asyncpg.Record]", migration: Migration) -> None:
        recorded = await conn.fetchval(
            "SELECT count(*) FROM schema_migrations WHERE version = $1", migration.version
        )
        seen.append((migration.name, conn.is_in_transaction(), recorded))

    assert await migrate(empty_db, after_sql=hook) == NAMES
    assert seen == [(name, True, 0) for name in NAMES]


async def test_a_failing_hook_leaves_its_migration_unapplied(empty_db: str) -> None:
    await migrate(empty_db, up_to=4)

    async def fail(conn: "asyncpg.Connection[asyncpg.Record]", migration: Migration) -> None:
        raise RuntimeError(f"no rebuild for {migration.name}")

    with pytest.raises(RuntimeError, match="no rebuild for 0005"):
        await migrate(empty_db, after_sql=fail)
    assert await _recorded(empty_db) == NAMES[:4]
    conn = await asyncpg.connect(empty_db)
    try:  # 0005's SQL was rolled back with it
        assert await conn.fetchval("SELECT to_regclass($1)", REBUILD_QUEUE) is None
    finally:
        await conn.close()


async def test_devices_queued_for_a_rebuild_block_a_run_without_one(empty_db: str) -> None:
    """0005 queues a device with a reading outside the supported range; the schema alone cannot rebuild
    it, so a run without a hook records nothing, and one whose hook empties the queue goes through."""
    await migrate(empty_db, up_to=4)
    conn = await asyncpg.connect(empty_db)
    try:
        fine, far = datetime(2026, 3, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC)
        await conn.execute(
            "INSERT INTO devices (device_id, first_seen, last_seen) VALUES ('far', $1, $2)", fine, far
        )
        await conn.executemany(
            "INSERT INTO samples (device_id, ts, power_w, import_kwh, export_kwh)"
            " VALUES ('far', $1, 1, 1, 0)",
            [(fine,), (far,)],
        )
    finally:
        await conn.close()
    # The queue waits for the newest migration, after which a rebuild runs with the current code.
    with pytest.raises(RebuildsPending, match=rf"{NAMES[-1]} queued 1 device"):
        await migrate(empty_db)
    assert await _recorded(empty_db) == NAMES[:-1]

    async def rebuild(conn: "asyncpg.Connection[asyncpg.Record]", migration: Migration) -> None:
        await conn.execute(f"DELETE FROM {REBUILD_QUEUE}")

    assert await migrate(empty_db, after_sql=rebuild) == NAMES[-1:]


async def test_the_demand_functions_body_is_the_schemas_rules(database_url: str) -> None:
    """Migration 0008's p1_capacity_quarters runs exactly p1_schema.capacity's statement."""
    from p1_schema.capacity import DEMAND_FUNCTION_BODY

    conn = await asyncpg.connect(database_url)
    try:
        body = await conn.fetchval("SELECT prosrc FROM pg_proc WHERE proname = 'p1_capacity_quarters'")
    finally:
        await conn.close()
    assert body == DEMAND_FUNCTION_BODY
