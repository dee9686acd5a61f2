"""Bounded concurrency per read token and per process (exports in progress, open live streams).

A request takes a slot before it starts and frees it, once, whatever ends it; beyond either bound it is
refused with 429 and Retry-After, naming the bound it hit.
"""

from collections.abc import Callable

from prometheus_client import Gauge

from p1_servicekit.errors import TooManyRequests


class Slots:
    """What is in progress in this process, per owner (``Reader.key``) and in all."""

    def __init__(self, what: str, per_token: int, per_process: int, retry_after_s: int, gauge: Gauge):
        self._what = what  # e.g. "exports are in progress": the refusal's words
        self._per_token = per_token
        self._per_process = per_process
        self._retry_after_s = retry_after_s
        self._gauge = gauge
        self._by_owner: dict[str, int] = {}
        self._total = 0

    def take(self, owner: str) -> Callable[[], bool]:
        """A slot for ``owner``, or TooManyRequests; the returned function frees it (True the first time)."""
        mine = self._by_owner.get(owner, 0)
        if mine >= self._per_token or self._total >= self._per_process:
            whose = "this token" if mine >= self._per_token else "this server"
            limit = self._per_token if mine >= self._per_token else self._per_process
            raise TooManyRequests(
                self._retry_after_s, f"{limit} {self._what} for {whose}; retry after one ends."
            )
        self._by_owner[owner] = mine + 1
        self._total += 1
        self._gauge.inc()
        freed = False

        def free() -> bool:
            nonlocal freed
            if freed:
                return False
            freed = True
            left = self._by_owner[owner] - 1
            if left:
                self._by_owner[owner] = left
            else:
                del self._by_owner[owner]
            self._total -= 1
            self._gauge.dec()
            return True

        return free

    def taken(self) -> int:
        return self._total
