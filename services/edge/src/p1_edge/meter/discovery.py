"""Finds the P1 meter on the LAN by itself: HomeWizard devices announce ``_hwenergy._tcp`` over mDNS.

Their TXT records say what each one is (as Home Assistant's homewizard integration and
python-homewizard-energy read them): ``product_type`` (``HWE-P1`` for the P1 meter), ``serial``,
``api_enabled`` (``1`` when the local API is switched on in the app) and ``path`` (``/api/v1``). The
address and port come from the announcement's SRV and A records, and a new announcement after a DHCP
change updates them: :class:`Discovery` keeps the latest of each device, :func:`choose` picks the meter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from p1_edge.meter.errors import MeterNeedsUser, MeterUnreachable

log = logging.getLogger(__name__)

SERVICE_TYPE: Final = "_hwenergy._tcp.local."
P1_PRODUCT: Final = "HWE-P1"
_INFO_TIMEOUT_MS: Final = 3000
SEVERAL_HINT: Final = "set P1_SERIAL (or DEVICE_ID) to the serial of the meter to read"


@dataclass(frozen=True)
class Announcement:
    """One device as its mDNS announcement describes it."""

    name: str
    product_type: str
    serial: str
    api_enabled: bool
    path: str
    address: str
    port: int

    @property
    def host(self) -> str:
        """``host:port`` as ``P1_HOST`` takes it."""
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return f"{literal}:{self.port}"

    @property
    def is_p1(self) -> bool:
        return self.product_type == P1_PRODUCT


def announcement(info: AsyncServiceInfo) -> Announcement | None:
    """None for an announcement without an address or a serial (not one we could ever poll)."""
    txt = info.decoded_properties
    addresses = info.parsed_addresses(IPVersion.V4Only) or info.parsed_addresses()
    serial = txt.get("serial")
    if not addresses or not serial or info.port is None:
        return None
    return Announcement(
        name=info.name,
        product_type=txt.get("product_type") or "",
        serial=serial.lower(),
        api_enabled=txt.get("api_enabled") == "1",
        path=txt.get("path") or "",
        address=addresses[0],
        port=info.port,
    )


def choose(found: Sequence[Announcement], wanted: str | None, device_id: str | None) -> Announcement:
    """The P1 meter to read: the one with serial ``wanted`` (P1_SERIAL), else the one whose serial is
    ``device_id``, else the only one. Raises MeterUnreachable (none yet: try again) or MeterNeedsUser
    (several and no way to choose)."""
    meters = sorted((a for a in found if a.is_p1), key=lambda a: a.serial)
    if wanted:
        match = [a for a in meters if a.serial == wanted.lower()]
        if not match:
            raise MeterUnreachable(f"no P1 meter with serial {wanted} announces itself (mDNS)")
        return match[0]
    by_id = [a for a in meters if device_id and a.serial == device_id.lower()]
    if by_id:
        return by_id[0]
    if len(meters) == 1:
        return meters[0]
    if not meters:
        raise MeterUnreachable("no P1 meter announces itself on the LAN yet (mDNS _hwenergy._tcp)")
    serials = ", ".join(a.serial for a in meters)
    raise MeterNeedsUser(f"{len(meters)} P1 meters announce themselves ({serials})", SEVERAL_HINT)


class Discovery:
    """Browses ``_hwenergy._tcp`` until closed, keeping the latest announcement of every device."""

    def __init__(self) -> None:
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._found: dict[str, Announcement] = {}
        self._lookups: set[asyncio.Task[None]] = set()

    @property
    def found(self) -> list[Announcement]:
        return list(self._found.values())

    async def start(self) -> None:
        self._zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
        self._browser = AsyncServiceBrowser(self._zc.zeroconf, [SERVICE_TYPE], handlers=[self._on_change])

    async def close(self) -> None:
        for task in list(self._lookups):
            task.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zc is not None:
            await self._zc.async_close()

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            gone = self._found.pop(name, None)
            if gone is not None:
                log.info(
                    "meter left the LAN (mDNS)", extra={"product": gone.product_type, "serial": gone.serial}
                )
            return
        task = asyncio.get_running_loop().create_task(self._look_up(service_type, name))
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _look_up(self, service_type: str, name: str) -> None:
        if self._zc is None:
            return
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self._zc.zeroconf, _INFO_TIMEOUT_MS):
            return
        found = announcement(info)
        if found is None or self._found.get(name) == found:
            return
        before = self._found.get(name)
        self._found[name] = found
        if before is not None and before.host != found.host:
            moved = {
                "product": found.product_type,
                "serial": found.serial,
                "from": before.host,
                "to": found.host,
            }
            log.info("meter moved", extra=moved)
