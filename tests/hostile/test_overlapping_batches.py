"""Concurrent overlapping batches (issue 11: these held; kept standing): eight uploads of one device sent
at the same instant, each a window of the same readings in its own order, store every reading exactly
once, answer accepted + duplicates that add up, and leave rollups equal to a fresh aggregation of the
stored rows (ingest_kit.assert_rollups_exact, shared with the ingest suite)."""

import asyncio
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import httpx
from hostile_kit import WRITE_TOKENS, Meter, Stack, batch, post, rows, still_works
from ingest_kit import assert_rollups_exact

DEVICE = "h-overlap"
TOKEN = WRITE_TOKENS[DEVICE]
UPLOADS = 8
READINGS = 60
WINDOW = 24  # upload k sends readings [6k, 6k + 24) (the last ones fewer): each overlaps others


async def _check_rollups(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await assert_rollups_exact(conn, DEVICE)
    finally:
        await conn.close()


def test_eight_concurrent_overlapping_uploads_store_each_reading_once(stack: Stack) -> None:
    meter = Meter(DEVICE)
    readings = meter.readings(READINGS)
    shuffle = random.Random(11)
    windows = []
    for k in range(UPLOADS):
        window = readings[k * 6 : k * 6 + WINDOW]
        shuffle.shuffle(window)
        windows.append(window)
    sent = {r["ts"] for w in windows for r in w}
    start = threading.Barrier(UPLOADS, timeout=10)

    def upload(window: list[dict[str, Any]]) -> httpx.Response:
        start.wait()
        return post(stack, batch(DEVICE, window), TOKEN)

    with ThreadPoolExecutor(UPLOADS) as pool:
        answers = list(pool.map(upload, windows))
    assert [a.status_code for a in answers] == [200] * UPLOADS, [a.text for a in answers]
    assert sum(a.json()["accepted"] for a in answers) == len(sent)
    assert sum(a.json()["duplicates"] for a in answers) == sum(map(len, windows)) - len(sent)

    stored = rows(stack, "SELECT ts, import_kwh FROM samples WHERE device_id = $1 ORDER BY ts", DEVICE)
    expected = sorted((r for r in readings if r["ts"] in sent), key=lambda r: r["ts"])
    assert [r["ts"].isoformat() for r in stored] == [r["ts"] for r in expected]
    assert [r["import_kwh"] for r in stored] == [r["import_kwh"] for r in expected]
    asyncio.run(_check_rollups(stack.database_url))
    still_works(stack, meter)
