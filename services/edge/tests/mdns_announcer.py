"""Announces fake HomeWizard devices over mDNS, as the real ones do, for the discovery test.

Run only inside the test's own network namespace (``ip netns exec``): it sends multicast. Commands on
stdin, one per line, each answered ``ok`` on stdout once done:

    announce NAME PRODUCT_TYPE SERIAL ADDRESS PORT API_ENABLED
    move NAME ADDRESS          (a DHCP change: the device announces its new address)
    quit
"""

from __future__ import annotations

import asyncio
import socket
import sys

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

SERVICE_TYPE = "_hwenergy._tcp.local."


def service(
    name: str, product: str, serial: str, address: str, port: int, api_enabled: str
) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton(address)],
        port=port,
        properties={
            "api_enabled": api_enabled,
            "path": "/api/v1",
            "serial": serial,
            "product_name": "P1 meter" if product == "HWE-P1" else product,
            "product_type": product,
        },
        server=f"{name}.local.",
    )


async def main() -> None:
    zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    services: dict[str, AsyncServiceInfo] = {}
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            words = line.split()
            if not words or words[0] == "quit":
                return
            if words[0] == "announce":
                name, product, serial, address, port, enabled = words[1:7]
                info = service(name, product, serial, address, int(port), enabled)
                services[name] = info
                await zc.async_register_service(info)
            elif words[0] == "move":
                old = services[words[1]]
                txt = old.decoded_properties
                info = service(
                    words[1],
                    str(txt["product_type"]),
                    str(txt["serial"]),
                    words[2],
                    int(old.port or 0),
                    str(txt["api_enabled"]),
                )
                services[words[1]] = info
                await zc.async_update_service(info)
            print("ok", flush=True)
    finally:
        await zc.async_unregister_all_services()
        await zc.async_close()


if __name__ == "__main__":
    asyncio.run(main())
