"""`make screenshots`: every view of the dashboard on a phone (360×780) and a desktop (1280×800), written
to docs/img/ from a realistic dataset: a year of the simulator's "family" household (solar, an EV, a heat
pump, gas and water) sent through a real ingest, its last day and a half at one reading a second, the
example Flemish tariff plans (deploy/tariffs/flanders-fixed.yaml) and a peak warning p1-notify sent, shown
by a real query process in Debian's chromium. The database is a throwaway one, dropped at the end."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
from web_kit import (
    CHROMIUM,
    HOME,
    READ_TOKEN,
    TZ,
    TZ_NAME,
    Meter,
    Servers,
    add_notifications,
    dst_days,
    load_plans,
    local_midnight,
    notifications_for,
)

from p1_schema.migrate import migrate
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

OUT = Path(__file__).resolve().parents[2] / "docs" / "img"
SIZES = {"phone": (360, 780), "desktop": (1280, 800)}


def views(autumn: str, month: str) -> dict[str, str]:
    last_month = (datetime.now(TZ).date().replace(day=1) - timedelta(days=1)).replace(day=1)
    return {
        "now": "view=now",
        "today": "view=today",
        "history-day": f"view=history&span=day&at={autumn}",
        "history-month": f"view=history&span=month&at={last_month.isoformat()}",
        "history-year": "view=history&span=year",
        "capacity": f"view=capacity&month={month}",
    }


def settle(page: Page) -> None:
    """Until the view has drawn: no "Loading…" left, charts on their canvas, live value in."""
    page.wait_for_function(
        "() => document.body.dataset.view && !document.querySelector('main').innerText.includes('Loading')"
    )
    for chart in page.locator("figure.chart").all():
        chart.locator("canvas").wait_for()


def shoot(base: str, autumn: str, month: str) -> list[Path]:
    written: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for size, (width, height) in SIZES.items():
            context = browser.new_context(
                viewport={"width": width, "height": height},
                timezone_id=TZ_NAME,
                locale="en-GB",
                color_scheme="light",
                device_scale_factor=1,
            )
            page = context.new_page()
            page.goto(f"{base}/?view=now&device={HOME}")
            page.get_by_label("Read token").wait_for()
            written.append(OUT / f"signin-{size}.png")
            page.screenshot(path=str(written[-1]))
            page.get_by_label("Read token").fill(READ_TOKEN)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_function("() => document.body.dataset.view === 'now'")  # the session is set
            for name, query in views(autumn, month).items():
                page.goto(f"{base}/?{query}&device={HOME}")
                settle(page)
                if name == "now":
                    page.get_by_test_id("live-power").and_(
                        page.locator("[data-value]:not([data-value=''])")
                    ).wait_for()
                    page.get_by_test_id("last-warning").wait_for()
                if name == "capacity":
                    page.get_by_test_id("bill-lines").wait_for()
                written.append(OUT / f"{name}-{size}.png")
                page.screenshot(path=str(written[-1]), full_page=size == "phone")
            context.close()
        browser.close()
    return written


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    database_url = asyncio.run(create_database(pg_server_url(), "p1_screens"))
    try:
        asyncio.run(migrate(database_url))
        load_plans(database_url)  # the example Flemish plans: History's costs and Capacity's bill
        with tempfile.TemporaryDirectory() as workdir:
            servers = Servers(Path(workdir), database_url, None).start()
            try:
                now = int(time.time())
                today = datetime.now(TZ).date()
                fine_from = local_midnight(today - timedelta(days=1))
                started = time.monotonic()
                sent = Meter(HOME).send(servers, [(now - 365 * 86400, now, now - fine_from)])
                print(
                    f"screenshots: {sent:,} readings through ingest in {time.monotonic() - started:.0f} s",
                    flush=True,
                )
                add_notifications(database_url, HOME, notifications_for(HOME, datetime.now(UTC)))
                _, autumn = dst_days(today)
                written = shoot(servers.base_url, autumn.isoformat(), autumn.strftime("%Y-%m"))
            finally:
                servers.stop()
    finally:
        asyncio.run(drop_database(database_url))
    for path in written:
        print(f"screenshots: {path.relative_to(OUT.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
