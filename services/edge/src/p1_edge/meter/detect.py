"""Connects to the meter: the configured API version, or the first that answers ``GET /api``."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from p1_edge.meter.client import ApiVersion, DeviceInfo, MeterClient
from p1_edge.meter.errors import MeterBadResponse, MeterError, MeterUnreachable

log = logging.getLogger(__name__)


async def connect(
    host: str,
    api: ApiVersion | None,
    tz: ZoneInfo,
    *,
    token: str | None,
    timeout_s: float,
    ca_file: str | None,
    insecure: bool,
) -> tuple[MeterClient, DeviceInfo]:
    """A ready client and the dongle's identity; raises the last MeterError when nothing answers.

    Without ``P1_API``: with a token v2 is tried first (a token is only ever for v2), else v1 first.
    A v1 answer whose ``api_version`` is not v1 means the device speaks v2 only over HTTPS.
    """
    order: list[ApiVersion] = [api] if api else (["v2", "v1"] if token else ["v1", "v2"])
    last: MeterError = MeterUnreachable(f"{host}: no API answered")
    for candidate in order:
        client = MeterClient(
            host, candidate, tz, token=token, timeout_s=timeout_s, ca_file=ca_file, insecure=insecure
        )
        try:
            device = await client.device()
            if api is None and candidate == "v1" and not device.api_version.startswith("v1"):
                raise MeterBadResponse(f"GET /api says api_version {device.api_version!r}")
            await client.pin_identity(device)
        except (MeterUnreachable, MeterBadResponse) as exc:
            await client.aclose()
            log.info("meter API not usable", extra={"api": candidate, "host": host, "error": str(exc)})
            last = exc
            continue
        except BaseException:
            await client.aclose()
            raise
        found = {"serial": device.serial, "product": device.product_type, "firmware": device.firmware_version}
        log.info("meter found", extra={**found, "api": candidate})
        return client, device
    raise last
