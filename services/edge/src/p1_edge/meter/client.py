"""One HTTP conversation with the meter: a single request at a time, short timeouts, typed JSON.

The P1 dongle copes badly with parallel requests, so every call goes through one lock and the
httpx pool holds one connection. v1 and v2 differ only in base URL, TLS, headers and mapping table;
that difference lives in :class:`ApiFlavour`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

import httpx

from p1_contracts.models import Meter, Sample
from p1_edge.meter.errors import (
    MeterApiDisabled,
    MeterBadResponse,
    MeterUnauthorized,
    MeterUnreachable,
)
from p1_edge.meter.localtime import LocalClock, TelegramTimes
from p1_edge.meter.mapping import (
    V1_FIELDS,
    V2_FIELDS,
    FieldMap,
    UnusableReading,
    build_sample,
    map_values,
    to_meter,
)

log = logging.getLogger(__name__)

ApiVersion = Literal["v1", "v2"]
JsonObject = dict[str, object]
READING_PATHS: dict[ApiVersion, str] = {"v1": "/api/v1/data", "v2": "/api/measurement"}
TELEGRAM_PATHS: dict[ApiVersion, str] = {"v1": "/api/v1/telegram", "v2": "/api/telegram"}

# The hostname the HomeWizard CA puts in a device certificate's CN: appliance/<type>/<serial>.
_APPLIANCE_TYPES = {
    "HWE-P1": "p1dongle",
    "HWE-SKT": "energysocket",
    "HWE-WTR": "watermeter",
    "HWE-KWH1": "energymeter",
    "HWE-KWH3": "energymeter",
    "SDM230-wifi": "energymeter",
    "SDM630-wifi": "energymeter",
    "HWE-BAT": "battery",
}

API_DISABLED_HINT = (
    "the meter's local API is switched off: open the HomeWizard Energy app → Settings → Meters → "
    "your P1 meter → enable 'Local API', then the edge picks it up by itself"
)
UNAUTHORIZED_HINT = (
    "the meter rejected the v2 token: run `p1-edge pair` next to the meter (press its button when "
    "asked) and put the printed token in P1_TOKEN"
)


@dataclass(frozen=True)
class DeviceInfo:
    """``GET /api`` of the P1 dongle (not the smart meter behind it)."""

    product_type: str
    serial: str
    firmware_version: str
    api_version: str

    @property
    def appliance_hostname(self) -> str:
        kind = _APPLIANCE_TYPES.get(self.product_type, "p1dongle")
        return f"appliance/{kind}/{self.serial}"


@dataclass(frozen=True)
class Reading:
    sample: Sample
    meter: Meter | None
    timed_by_meter: bool  # the sample's ts is the meter's (v2), not the poll's (v1)


def split_host(host: str, default_port: int) -> tuple[str, int]:
    """``"10.0.0.5"`` / ``"10.0.0.5:8090"`` / ``"[::1]:80"`` → (host, port)."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else default_port
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, int(port)
    return host, default_port


def base_url(host: str, api: ApiVersion) -> str:
    name, port = split_host(host, 80 if api == "v1" else 443)
    scheme = "http" if api == "v1" else "https"
    literal = f"[{name}]" if ":" in name else name
    return f"{scheme}://{literal}:{port}"


def tls_context(ca_file: str | None, insecure: bool, check_hostname: bool) -> ssl.SSLContext:
    """The v2 context: the HomeWizard CA (or ``ca_file``), hostname checked against the CN."""
    from p1_edge.meter.cacert import HOMEWIZARD_CA_PEM

    if insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = (
        ssl.create_default_context(cafile=ca_file)
        if ca_file
        else ssl.create_default_context(cadata=HOMEWIZARD_CA_PEM)
    )
    # Device certificates carry appliance/<type>/<serial> in the CN and no SAN (HomeWizard's rule).
    ctx.hostname_checks_common_name = True
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class MeterClient:
    """Talks to one meter over one API version. Closes the httpx client only if it made it."""

    def __init__(
        self,
        host: str,
        api: ApiVersion,
        tz: ZoneInfo,
        *,
        token: str | None = None,
        timeout_s: float = 4.0,
        ca_file: str | None = None,
        insecure: bool = False,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.api: ApiVersion = api
        self.host = host
        self._tz = tz
        self._token = token
        self._table: tuple[FieldMap, ...] = V1_FIELDS if api == "v1" else V2_FIELDS
        self._lock = asyncio.Lock()
        self._sni: str | None = None
        self._owns_http = http is None
        self._ca_file = ca_file
        self._insecure = insecure
        self._timeout_s = timeout_s
        self._base = base_url(host, api)
        self._http = http or self._make_http(check_hostname=False)

    def _make_http(self, check_hostname: bool) -> httpx.AsyncClient:
        if self.api == "v2":
            verify = tls_context(self._ca_file, self._insecure, check_hostname)
        else:
            # v1 is plain HTTP. An empty verifying context is free to make, whereas httpx's default
            # loads the whole system CA bundle (~0.1 s of CPU) on every reconnect to an absent meter.
            verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        headers = {"Accept": "application/json"}
        if self.api == "v2":
            headers["X-Api-Version"] = "2"
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
        return httpx.AsyncClient(
            base_url=self._base,
            headers=headers,
            timeout=httpx.Timeout(self._timeout_s),
            verify=verify,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            trust_env=False,  # a LAN device: never through a proxy from the environment
        )

    async def pin_identity(self, device: DeviceInfo) -> None:
        """From now on, require the v2 certificate to name this device (appliance/<type>/<serial>).

        ``GET /api`` is how we learn the serial, so that first call checks the CA only.
        """
        if self.api != "v2" or self._insecure or not self._owns_http:
            return
        self._sni = device.appliance_hostname
        old, self._http = self._http, self._make_http(check_hostname=True)
        await old.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def device(self) -> DeviceInfo:
        body = await self._get_json("/api")
        try:
            return DeviceInfo(
                product_type=str(body.get("product_type", "")),
                serial=str(body["serial"]),
                firmware_version=str(body.get("firmware_version", "")),
                api_version=str(body.get("api_version", "")),
            )
        except KeyError as exc:
            raise MeterBadResponse("GET /api gave no serial") from exc

    async def reading(self, polled_at: datetime, clock: LocalClock | None = None) -> Reading:
        """The meter's current reading; ``clock`` places its local times (the repeated autumn hour),
        reading the telegram when only the telegram can (see ``meter/localtime.py``)."""
        path = READING_PATHS[self.api]
        body = await self._get_json(path)
        values = map_values(body, self._table, self._tz, polled_at)
        if clock is not None:
            telegram = await self.telegram_times() if clock.needs_telegram(values) else None
            clock.place(values, telegram)
        try:
            sample = build_sample(values)
        except UnusableReading as exc:
            raise MeterBadResponse(f"{path}: {exc}") from exc
        return Reading(sample=sample, meter=to_meter(body), timed_by_meter=self.api == "v2")

    async def telegram(self) -> str | None:
        """The meter's raw DSMR telegram; None when it cannot be read (logged)."""
        path = TELEGRAM_PATHS[self.api]
        try:
            response = await self._get(path)
        except MeterUnreachable as exc:
            log.warning("cannot read the telegram", extra={"path": path, "error": str(exc)})
            return None
        if response.status_code != 200:
            log.warning("cannot read the telegram", extra={"path": path, "status": response.status_code})
            return None
        return response.text

    async def telegram_times(self) -> TelegramTimes | None:
        """The times in the meter's DSMR telegram with their season flags; None when it cannot be read."""
        path = TELEGRAM_PATHS[self.api]
        try:
            response = await self._get(path)
        except MeterUnreachable as exc:
            log.warning(
                "cannot read the telegram to place a time in the repeated hour", extra={"error": str(exc)}
            )
            return None
        if response.status_code != 200:
            log.warning("cannot read the telegram", extra={"path": path, "status": response.status_code})
            return None
        return TelegramTimes.parse(response.text)

    async def _get_json(self, path: str) -> JsonObject:
        return self._decode(path, await self._get(path))

    async def _get(self, path: str) -> httpx.Response:
        extensions = {"sni_hostname": self._sni} if self._sni else None
        async with self._lock:
            try:
                return await self._http.get(path, extensions=extensions)
            except httpx.TimeoutException as exc:
                raise MeterUnreachable(f"{self._base}{path}: timed out") from exc
            except httpx.TransportError as exc:
                raise MeterUnreachable(f"{self._base}{path}: {exc!r}") from exc

    def _decode(self, path: str, response: httpx.Response) -> JsonObject:
        if response.status_code == 401:
            raise MeterUnauthorized(f"{path}: 401 {response.text[:200]}", UNAUTHORIZED_HINT)
        if response.status_code == 403:
            raise MeterApiDisabled(f"{path}: 403 {response.text[:200]}", API_DISABLED_HINT)
        if response.status_code != 200:
            raise MeterBadResponse(f"{path}: HTTP {response.status_code}")
        try:
            body: object = json.loads(response.content)
        except ValueError as exc:
            raise MeterBadResponse(f"{path}: malformed JSON") from exc
        if not isinstance(body, dict):
            raise MeterBadResponse(f"{path}: not a JSON object")
        return body
