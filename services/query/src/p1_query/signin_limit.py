"""How many bad tokens a client address may try at ``POST /v1/session``: a token bucket per address, in
this process, charged only by failures (a household signing in is never slowed down by its own success).

While an address's bucket is empty every sign-in from it is refused 429 *before* the token is checked, so
an attacker learns nothing from the answers until it refills. The table holds at most ``max_clients``
addresses, the least recently seen forgotten first: a flood of addresses costs bounded memory, and
forgetting one only gives it a fresh bucket of ``burst`` tries.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class SigninLimiter:
    def __init__(
        self,
        burst: int,
        per_minute: float,
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = float(burst)
        self._rate = per_minute / 60.0
        self._max = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, client: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(self._burst, now)
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
            bucket.at = now
        return bucket

    def wait_s(self, client: str) -> int:
        """0 when ``client`` may try a token; else the whole seconds until it may (Retry-After)."""
        bucket = self._bucket(client)
        if bucket.tokens >= 1.0:
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self._rate))

    def failed(self, client: str) -> None:
        """``client`` gave a bad token."""
        bucket = self._bucket(client)
        bucket.tokens = max(0.0, bucket.tokens - 1.0)
