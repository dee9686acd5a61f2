"""``/healthz`` (alive) and ``/readyz`` (every readiness probe passes)."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from p1_contracts.models import Health

Probe = Callable[[], Awaitable[bool]]


def health_router(probes: Mapping[str, Probe], timeout_s: float = 2.0) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False, responses={200: {}})
    async def healthz() -> JSONResponse:
        return JSONResponse(Health(status="ok", checks={}).model_dump(mode="json"))

    @router.get("/readyz", include_in_schema=False, responses={200: {}, 503: {}})
    async def readyz() -> JSONResponse:
        names = list(probes)
        results = await asyncio.gather(*(_run(probes[n], timeout_s) for n in names))
        checks: dict[str, Literal["ok", "unavailable"]] = {
            n: ("ok" if ok else "unavailable") for n, ok in zip(names, results, strict=True)
        }
        ready = all(results)
        body = Health(status="ok" if ready else "unavailable", checks=checks)
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)

    return router


async def _run(probe: Probe, timeout_s: float) -> bool:
    try:
        return await asyncio.wait_for(probe(), timeout_s)
    except Exception:  # a failing probe is an answer ("unavailable"), not an error
        return False
