"""``GET /v1/devices/{device_id}/notifications``: what p1-notify sent (table ``notifications``, migration
0011, written by notify only), newest first, a page at a time.

Order: by quarter, newest first; within a quarter the result (sent at its end) before the warning. The
cursor is the last row's key, ``<quarter start, epoch seconds, 10 digits><r|w>``: every string of the
contract's pattern is a valid key, so a cursor is never refused for its value."""

import json
from datetime import UTC, datetime
from typing import Final

from p1_contracts.models import Notification, NotificationChannel, NotificationPage
from p1_query.db import Conn

# 'result' < 'warning': ascending kind puts a quarter's result first.
_PAGE_SQL: Final = """
SELECT quarter_start, kind, message, claimed_at, sent_at, channels FROM notifications
 WHERE device_id = $1 AND ($2::timestamptz IS NULL OR quarter_start < $2
                           OR (quarter_start = $2 AND kind > $3))
 ORDER BY quarter_start DESC, kind ASC
 LIMIT $4"""
_KINDS: Final = {"r": "result", "w": "warning"}


def parse_cursor(cursor: str | None) -> tuple[datetime | None, str]:
    if cursor is None:
        return None, ""
    return datetime.fromtimestamp(int(cursor[:-1]), UTC), _KINDS[cursor[-1]]


def _cursor(quarter_start: datetime, kind: str) -> str:
    return f"{int(quarter_start.timestamp()):010d}{kind[0]}"


async def notification_page(conn: Conn, device_id: str, limit: int, cursor: str | None) -> NotificationPage:
    after, kind = parse_cursor(cursor)
    rows = await conn.fetch(_PAGE_SQL, device_id, after, kind, limit + 1)
    items = [
        Notification(
            quarter_start=r["quarter_start"],
            kind=r["kind"],
            message=r["message"],
            claimed_at=r["claimed_at"],
            sent_at=r["sent_at"],
            channels=[NotificationChannel.model_validate(c) for c in json.loads(r["channels"])],
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    next_cursor = _cursor(last["quarter_start"], last["kind"]) if last is not None else None
    return NotificationPage(device_id=device_id, notifications=items, next_cursor=next_cursor)
