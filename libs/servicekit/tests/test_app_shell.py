"""The shared app shell, in-process: problem+json, metrics by route template, route checks."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Query
from prometheus_client import CollectorRegistry

from p1_contracts.models import Problem
from p1_servicekit.app import create_db_service_app, create_service_app
from p1_servicekit.errors import ServiceUnavailable
from p1_servicekit.settings import ServiceSettings
from p1_servicekit.spec import load_spec, route_mismatches, spec_for_tag


@asynccontextmanager
async def _nothing(_: FastAPI) -> AsyncIterator[None]:
    yield


def _app(ready: bool = True) -> tuple[FastAPI, CollectorRegistry]:
    registry = CollectorRegistry()

    async def probe() -> bool:
        if not ready:
            raise OSError("down")
        return True

    app = create_service_app(
        service="t", tag="ingest", lifespan=_nothing, probes={"postgres": probe}, registry=registry
    )

    @app.get("/items/{item_id}")
    async def item(item_id: int, n: Annotated[int, Query(ge=1)] = 1) -> dict[str, int]:
        return {"item_id": item_id, "n": n}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/db")
    async def db() -> None:
        raise ConnectionRefusedError("pg down")

    @app.get("/busy")
    async def busy() -> None:
        raise ServiceUnavailable(7)

    @app.get("/bad-answer")
    async def bad_answer() -> None:
        Problem.model_validate({"type": "about:blank"})  # an answer of ours that breaks its own model

    return app, registry


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app, _ = _app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_validation_error_is_problem_json_naming_the_field(client: httpx.AsyncClient) -> None:
    r = await client.get("/items/1?n=0")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 422
    assert "n" in body["detail"]
    assert body["errors"][0]["loc"] == ["query", "n"]


async def test_unexpected_error_is_a_bare_500_without_traceback(client: httpx.AsyncClient) -> None:
    r = await client.get("/boom")
    assert r.status_code == 500
    assert "secret internals" not in r.text
    assert "Traceback" not in r.text
    assert r.json()["title"] == "Internal Server Error"


async def test_an_answer_that_breaks_its_model_is_a_500_not_the_clients_422(
    client: httpx.AsyncClient,
) -> None:
    """A pydantic ValidationError that escapes a handler comes from the service building a model, never from
    the request (every parser catches its own): a server error, not a 422 blaming the client's "body"."""
    r = await client.get("/bad-answer")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert "errors" not in r.json()


async def test_database_outage_is_503_with_retry_after(client: httpx.AsyncClient) -> None:
    for path, retry in (("/db", "5"), ("/busy", "7")):
        r = await client.get(path)
        assert r.status_code == 503
        assert r.headers["retry-after"] == retry
        assert r.headers["content-type"] == "application/problem+json"


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    r = await client.get("/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    r = await client.post("/healthz")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"


async def test_readyz_reflects_probes() -> None:
    app, _ = _app(ready=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "checks": {"postgres": "unavailable"}}


async def test_metrics_are_labelled_by_route_template(client: httpx.AsyncClient) -> None:
    for i in range(3):
        await client.get(f"/items/{i}")
    await client.get("/nope/at/all")
    text = (await client.get("/metrics")).text
    series = 'p1_http_requests_total{method="GET",route="/items/{item_id}",service="t",status="200"}'
    assert f"{series} 3.0" in text
    assert 'route="<unmatched>"' in text
    assert "/items/1" not in text


async def test_openapi_json_serves_only_the_tag(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/samples" in spec["paths"]
    assert "/healthz" in spec["paths"]
    # the query service's device routes are not ingest's; ingest's one under /v1/devices is its own
    assert "/v1/devices/{device_id}/meter-peaks" in spec["paths"]
    assert not any(p.startswith("/v1/devices") and "get" in ops for p, ops in spec["paths"].items())


def test_route_mismatches_both_ways() -> None:
    app, _ = _app()
    problems = route_mismatches(app, load_spec(), "ingest")
    assert "POST /v1/samples: in the spec (tag ingest) but not served" in problems
    assert "GET /items/{item_id}: served but not in the spec under tag ingest" in problems
    assert not any("/healthz" in p or "/metrics" in p or "/readyz" in p for p in problems)


def test_spec_for_tag_keeps_shared_operations() -> None:
    part = spec_for_tag(load_spec(), "query")
    assert set(part["paths"]) >= {"/v1/devices", "/healthz", "/metrics"}
    assert "/v1/samples" not in part["paths"]


async def test_db_service_app_opens_closes_and_freezes_its_startup_objects(database_url: str) -> None:
    """create_db_service_app: pool and guarded Redis in app.state while it runs, on_start sees them,
    readiness asks PostgreSQL, and the start-up objects are frozen out of the garbage collector (full
    collections over them were 40–60 ms pauses inside requests)."""
    started: list[object] = []
    settings = ServiceSettings(database_url=database_url, redis_url=None)
    app = create_db_service_app(
        service="shell",
        tag="query",
        settings=settings,
        registry=CollectorRegistry(),
        on_start=lambda a, pool, redis: started.append((pool, redis.enabled)),
    )
    gc.unfreeze()
    async with app.router.lifespan_context(app):
        assert started == [(app.state.pool, False)]
        assert gc.get_freeze_count() > 0
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            ready = await c.get("/readyz")
        assert (ready.status_code, ready.json()["checks"]) == (200, {"postgres": "ok"})
    assert app.state.pool.is_closing()


async def test_a_trailing_slash_is_a_404_not_a_redirect_built_from_the_host_header(
    client: httpx.AsyncClient,
) -> None:
    """Starlette's redirect_slashes answered /items/1/ with a 307 whose Location carried the request's
    Host header: any client could make the service point elsewhere. The shell turns it off."""
    r = await client.get("/items/1/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert "location" not in r.headers
    assert "evil.example" not in r.text
    assert (await client.get("/items/1")).status_code == 200
