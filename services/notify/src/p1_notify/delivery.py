"""Sending one message to a device's channels: all channels at once, each with bounded retries
(tenacity), a failing one logged by its masked URL and counted, the others unaffected."""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from tenacity import AsyncRetrying, RetryError, stop_after_attempt, wait_exponential_jitter

from p1_notify.channels import Channel, channel

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    shown: str
    ok: bool
    attempts: int

    def record(self) -> dict[str, object]:
        return {"channel": self.shown, "ok": self.ok, "attempts": self.attempts}


class ChannelFailed(Exception):
    """Apprise reported that the channel did not take the message."""


class Delivery:
    def __init__(
        self, registry: CollectorRegistry, attempts: int, backoff_s: float, timeout_s: float
    ) -> None:
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        self._failures = Counter(
            "p1_notify_delivery_failures",
            "Messages a channel did not take after every attempt, by channel kind (the Apprise scheme) "
            "and message kind.",
            ["channel", "kind"],
            registry=registry,
        )
        self._retries = Counter(
            "p1_notify_delivery_retries",
            "Attempts after a channel's first failed one, by channel kind.",
            ["channel"],
            registry=registry,
        )
        self._sent = Counter(
            "p1_notify_sent", "Messages handed to at least one channel, by kind.", ["kind"], registry=registry
        )

    async def send(self, urls: Sequence[str], kind: str, title: str, body: str) -> list[Outcome]:
        """Every URL at once; the outcome of each, in order. Never raises for a channel's failure."""
        outcomes = await asyncio.gather(*(self._one(url, kind, title, body) for url in urls))
        if any(o.ok for o in outcomes):
            self._sent.labels(kind).inc()
        return list(outcomes)

    async def _one(self, url: str, kind: str, title: str, body: str) -> Outcome:
        target = channel(url)
        if target is None:  # the config's check refuses these; a URL Apprise stopped taking is a failure
            self._failures.labels("invalid", kind).inc()
            log.error("notification channel not usable", extra={"kind": kind})
            return Outcome("(invalid channel)", False, 0)
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential_jitter(initial=self._backoff_s, max=30, jitter=self._backoff_s),
                reraise=False,
            ):
                with attempt:
                    attempts += 1
                    if attempts > 1:
                        self._retries.labels(target.kind).inc()
                    await self._try(target, title, body)
        except RetryError as exc:
            self._failures.labels(target.kind, kind).inc()
            cause = exc.last_attempt.exception()
            log.warning(
                "notification channel failed",
                extra={
                    "channel": target.shown,
                    "kind": kind,
                    "attempts": attempts,
                    "error": type(cause).__name__ if cause else "unknown",
                },
            )
            return Outcome(target.shown, False, attempts)
        return Outcome(target.shown, True, attempts)

    async def _try(self, target: Channel, title: str, body: str) -> None:
        ok = await asyncio.wait_for(target.plugin.async_notify(body=body, title=title), self._timeout_s)
        if not ok:
            raise ChannelFailed
