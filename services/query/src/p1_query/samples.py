"""Reads of raw readings (``samples``): the newest good one for realtime, and the pages of a raw export.

The columns are the contract's (``fields.SAMPLE_FIELDS``): ``samples`` has a column of the same name for
every Sample field, so a field added to the contract and the table is read here with no change.
"""

from typing import Final

import asyncpg

from p1_query.db import Conn
from p1_query.fields import SAMPLE_FIELDS

_LATEST_SQL: Final = (
    f"SELECT {', '.join(SAMPLE_FIELDS)} FROM samples WHERE device_id = $1 AND flag IS NULL"
    " ORDER BY ts DESC LIMIT 1"
)


async def latest_sample(conn: Conn, device_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_LATEST_SQL, device_id)


# The raw export gives every stored reading, with ingest's integrity flag last (empty/null: good;
# 'suspect' or 'glitch': counted nowhere), so a reader can see why a reading was ignored.
RAW_EXPORT_COLUMNS: Final = (*SAMPLE_FIELDS, "flag")
# One page of an export ($4 rows at most); the next page starts just after this one's last ts.
RAW_EXPORT_SQL: Final = (
    f"SELECT {', '.join(RAW_EXPORT_COLUMNS)} FROM samples"
    " WHERE device_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts LIMIT $4"
)
