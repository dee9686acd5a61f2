"""Per-token request rate limit: a token bucket per authenticated token, in this process.

Keys are only ever authenticated tokens' scopes, so the table is bounded by DEVICE_TOKENS. The
defaults sit far above what an edge sends: one request per UPLOAD_INTERVAL_S in steady state, and
back-to-back full batches (a few per second) while draining a backlog.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> int:
        """0 when the request may go on; else the whole seconds to wait (for Retry-After)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))
