"""One set of servers, one seeded household and one chromium for the whole module (process start-up
dominates on two cores); a fresh browser context per test, watched for console errors and for any
request that leaves the origin."""

import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from web_kit import (  # noqa: E402
    CABIN,
    CHROMIUM,
    HOME,
    TZ,
    TZ_NAME,
    Meter,
    Seeded,
    Servers,
    Watched,
    add_notifications,
    chromium_available,
    dst_days,
    load_plans,
    local_midnight,
    notifications_for,
)

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str, redis_client: object
) -> Iterator[Seeded]:
    """Two devices: the household (both DST days of the past year, and the last three days up to now,
    its last 10 minutes every second; two warnings and a result p1-notify sent) and a cabin (its last
    day); the example Flemish tariff plans loaded by ``p1-ingest tariffs load``. ``redis_client``
    empties the session's Redis database first: the answer cache's keys name the device, not the
    database, so an earlier run's answers for these device ids must not be found."""
    servers = Servers(tmp_path_factory.mktemp("web"), database_url, redis_url).start()
    try:
        load_plans(database_url)
        sent = notifications_for(HOME, datetime.now(UTC))
        add_notifications(database_url, HOME, sent)
        now = int(time.time())
        today = datetime.now(TZ).date()
        spring, autumn = dst_days(today)
        home = Meter(HOME)
        windows = [
            (local_midnight(d - timedelta(days=1)), local_midnight(d + timedelta(days=2)), 0)
            for d in sorted((spring, autumn))
        ]
        windows.append((local_midnight(today - timedelta(days=2)), now, 600))
        home.send(servers, windows)
        Meter(CABIN).send(servers, [(now - 86400, now - 60, 0)])
        yield Seeded(servers, home, spring, autumn, today, sent)
    finally:
        servers.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator["playwright_sync.Browser"]:
    if not chromium_available():
        if os.environ.get("P1_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{CHROMIUM} missing and P1_REQUIRE_CHROMIUM=1 (.ci/run installs it)")
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium (.ci/run installs it)")
    with playwright_sync.sync_playwright() as p:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def watch(page: "playwright_sync.Page", origin: str) -> Watched:
    watched = Watched(page, origin)
    page.on("console", lambda m: m.type == "error" and watched.errors.append(m.text))
    page.on("pageerror", lambda e: watched.errors.append(str(e)))
    page.on(
        "request",
        lambda r: r.url.startswith((origin + "/", "data:", "blob:")) or watched.foreign.append(r.url),
    )
    return watched


@pytest.fixture
def context_factory(browser: "playwright_sync.Browser", seeded: Seeded) -> Iterator[object]:
    made: list[playwright_sync.BrowserContext] = []
    pages: list[Watched] = []

    def make(
        width: int = 1280, height: int = 800, scheme: str = "light", bypass_csp: bool = False
    ) -> Watched:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            timezone_id=TZ_NAME,
            locale="en-US",
            color_scheme=scheme,  # type: ignore[arg-type]
            bypass_csp=bypass_csp,
        )
        made.append(context)
        watched = watch(context.new_page(), seeded.servers.base_url)
        pages.append(watched)
        return watched

    yield make
    for context in made:
        context.close()
    for watched in pages:
        watched.check()
