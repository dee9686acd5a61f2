"""One POST of a batch to ingest, and what its answer means for the spool.

    UplinkError
    └── TransientUploadError   network error, timeout, 408, 429, 5xx, 404/405: retry later
                                (``retry_after`` from the server when it sent one)

Everything else is an :class:`UploadResult` whose verdict tells the uploader what to do:
STORED (2xx: drop from the spool), TOO_LARGE (413: halve), UNAUTHORIZED (401/403: stop, tell the
user), INVALID (any other 4xx: quarantine). 404/405 count as transient on purpose: they mean a wrong
``INGEST_URL`` or a proxy in the way, and quarantining the whole spool for a typo would lose data.
"""

from __future__ import annotations

import email.utils
import json
import ssl
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import httpx

_DETAIL_MAX = 500


# gzip level 5 (Spool.peek_gzip compresses with it): most of level 9's ratio on this JSON at a fraction
# of the CPU.
GZIP_LEVEL = 5


class Verdict(Enum):
    STORED = "ok"
    TOO_LARGE = "too_large"
    UNAUTHORIZED = "unauthorized"
    INVALID = "invalid"


@dataclass(frozen=True)
class UploadResult:
    verdict: Verdict
    status: int
    detail: str = ""
    accepted: int = 0
    duplicates: int = 0


class UplinkError(Exception):
    pass


class TransientUploadError(UplinkError):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


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
    """Posts to ``{INGEST_URL}/v1/samples`` through one httpx client (closed only if made here)."""

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
        self._url = ingest_url.rstrip("/") + "/v1/samples"
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Accept": "application/json, application/problem+json",
        }

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def post(self, body: bytes) -> UploadResult:
        """Posts a gzip-compressed SampleBatch body (``Spool.peek_gzip`` makes it in a worker thread,
        off the event loop, while the previous batch is on the wire)."""
        try:
            response = await self._http.post(self._url, content=body, headers=self._headers)
        except httpx.TimeoutException as exc:
            raise TransientUploadError(f"{self._url}: timed out") from exc
        except httpx.TransportError as exc:
            raise TransientUploadError(f"{self._url}: {exc!r}") from exc
        return classify(response)


def classify(response: httpx.Response) -> UploadResult:
    status = response.status_code
    if 200 <= status < 300:
        accepted, duplicates = _counts(response)
        return UploadResult(Verdict.STORED, status, accepted=accepted, duplicates=duplicates)
    detail = _detail(response)
    if status in (408, 429, 404, 405) or status >= 500:
        raise TransientUploadError(
            f"HTTP {status}: {detail}",
            status=status,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if status in (401, 403):
        return UploadResult(Verdict.UNAUTHORIZED, status, detail)
    if status == 413:
        return UploadResult(Verdict.TOO_LARGE, status, detail)
    return UploadResult(Verdict.INVALID, status, detail)


def _counts(response: httpx.Response) -> tuple[int, int]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return 0, 0
    if not isinstance(body, dict):
        return 0, 0
    accepted, duplicates = body.get("accepted"), body.get("duplicates")
    return (
        accepted if isinstance(accepted, int) else 0,
        duplicates if isinstance(duplicates, int) else 0,
    )


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
