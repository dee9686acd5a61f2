"""One POST of a batch to ingest, and its answer as one :data:`Verdict` the uploader matches on.

    Stored        2xx: the readings leave the spool
    Retry         network error, timeout, 408, 429, 5xx, 404/405: try again later (``retry_after``
                  from the server when it sent one)
    TooLarge      413: halve the batch
    Unauthorized  401/403: stop uploading, tell the user
    Rejected      any other 4xx: ingest calls the batch invalid; ``bisect`` (422) when it names a
                  reading, so the batch is split until that reading is alone

404/405 count as Retry on purpose: they mean a wrong ``INGEST_URL`` or a proxy in the way, and
quarantining the whole spool for a typo would lose data. ``post`` never raises for an answer or a
network failure: every outcome is a verdict.
"""

from __future__ import annotations

import email.utils
import json
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import httpx

_DETAIL_MAX = 500
# gzip level 5 (Spool.peek_gzip compresses with it): most of level 9's ratio on this JSON at a fraction
# of the CPU.
GZIP_LEVEL = 5
_RETRY_STATUSES = frozenset({404, 405, 408, 429})


@dataclass(frozen=True)
class Stored:
    """2xx: ingest stored the batch (or had it already); the readings leave the spool."""

    label: ClassVar[str] = "ok"  # the p1_edge_upload_batches_total{result} of this verdict
    status: int


@dataclass(frozen=True)
class Retry:
    """No answer, or one that says "later": the same batch is sent again after a wait."""

    label: ClassVar[str] = "error"
    reason: str
    status: int | None = None  # None: no answer at all (network error, timeout)
    retry_after: float | None = None


@dataclass(frozen=True)
class TooLarge:
    """413: the batch is halved (a single reading too large is quarantined)."""

    label: ClassVar[str] = "too_large"
    detail: str


@dataclass(frozen=True)
class Unauthorized:
    """401/403: ingest refuses DEVICE_TOKEN; uploads stop until it is fixed."""

    label: ClassVar[str] = "unauthorized"
    status: int
    detail: str


@dataclass(frozen=True)
class Rejected:
    """Any other 4xx: ingest calls the batch invalid; bisected (422) or quarantined."""

    label: ClassVar[str] = "invalid"
    status: int
    detail: str
    bisect: bool  # 422: a reading of the batch is at fault, the others may be fine


Verdict = Stored | Retry | TooLarge | Unauthorized | Rejected
VERDICT_LABELS = tuple(v.label for v in (Stored, TooLarge, Unauthorized, Rejected, Retry))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class Uplink:
    """Posts to ``{INGEST_URL}/v1/samples`` (and puts the meter's peaks) through one httpx client
    (closed only if made here)."""

    def __init__(
        self,
        ingest_url: str,
        token: str,
        *,
        ca_bundle: Path | None = None,
        timeout_s: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._owns_http = http is None
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else True
        )
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            verify=verify,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        self._base = ingest_url.rstrip("/")
        self._url = self._base + "/v1/samples"
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Accept": "application/json, application/problem+json",
        }

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def post(self, body: bytes) -> Verdict:
        """Posts a gzip-compressed SampleBatch body (``Spool.peek_gzip`` makes it in a worker thread,
        off the event loop, while the previous batch is on the wire)."""
        try:
            response = await self._http.post(self._url, content=body, headers=self._headers)
        except httpx.TimeoutException:
            return Retry(f"{self._url}: timed out")
        except httpx.TransportError as exc:
            return Retry(f"{self._url}: {exc!r}")
        return classify(response)

    async def put_peaks(self, device_id: str, body: bytes) -> Verdict:
        """PUTs a MeterPeaks body (a few hundred bytes: sent as it is) for ``device_id``."""
        url = f"{self._base}/v1/devices/{device_id}/meter-peaks"
        headers = {k: v for k, v in self._headers.items() if k != "Content-Encoding"}
        try:
            response = await self._http.put(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Retry(f"{url}: timed out")
        except httpx.TransportError as exc:
            return Retry(f"{url}: {exc!r}")
        return classify(response)


def classify(response: httpx.Response) -> Verdict:
    status = response.status_code
    if 200 <= status < 300:
        return Stored(status)
    detail = _detail(response)
    if status in _RETRY_STATUSES or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Retry(f"HTTP {status}: {detail}", status, retry_after)
    if status in (401, 403):
        return Unauthorized(status, detail)
    if status == 413:
        return TooLarge(detail)
    return Rejected(status, detail, bisect=status == 422)


def _detail(response: httpx.Response) -> str:
    """The problem+json ``detail`` (or title), else the start of the body."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return response.text[:_DETAIL_MAX]
    if isinstance(body, dict):
        for key in ("detail", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:_DETAIL_MAX]
    return response.text[:_DETAIL_MAX]
