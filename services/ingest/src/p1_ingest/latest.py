"""The newest reading per device in Redis (the schema's layout, ``p1_schema.redis``), written after the
commit through RedisGuard: bounded by a short timeout, never an error for the request.

(The query service's cache is versioned by ``devices.late_writes`` and ``last_ts`` in PostgreSQL,
written in the insert's own statement, so no Redis write is needed to keep cached answers right.)
"""

from p1_contracts.models import Sample
from p1_schema.redis import store_latest
from p1_servicekit.redis_guard import RedisGuard


class LatestWriter:
    def __init__(self, guard: RedisGuard) -> None:
        self.guard = guard

    async def publish(self, device_id: str, newest: Sample) -> bool | None:
        """True when ``newest`` became the latest; None when Redis is off or failed (counted, logged)."""
        return await self.guard.run(lambda client: store_latest(client, device_id, newest))
