"""Dashboard benchmark (issue 17 §6): what a browser transfers to open `/`, and how soon the live power is
on screen, in Debian's chromium against real ingest and query processes on a fresh, migrated database.

1. First load: a new browser (empty cache) opens `/` (the sign-in page: index.html pulls every module,
   the CSS and uPlot). Reported: bytes transferred (headers + bodies as sent, from the browser's own
   accounting) with `Accept-Encoding: gzip` — budget 250 KB — beside the same files' uncompressed size
   (the baseline of the same run), whether the vendored files are `immutable` under hashed names, and
   what a reload transfers (revalidation of index.html only).
2. First live value: a signed-in browser navigates to `/?view=now`; reported: milliseconds from the
   navigation's start until the live power is on screen (median and max of ``--runs``) — budget 1.5 s —
   beside, in the same run, the page drawing its sign-in form (the page's own start, no API request) and
   one realtime request from Python (the server's share).

No Redis (the live stream polls PostgreSQL; the first value is sent when the stream opens either way).
Only 127.0.0.1 is contacted; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Request, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "web"))
from web_kit import CHROMIUM, HOME, READ_TOKEN, TZ_NAME, Meter, Servers

from p1_schema.migrate import migrate
from p1_servicekit.testing_db import create_database, drop_database, pg_server_url

LOAD_BUDGET_B = 250 * 1000
LIVE_BUDGET_S = 1.5


def first_load(browser: Browser, base: str) -> None:
    context = browser.new_context(timezone_id=TZ_NAME)
    page = context.new_page()
    done: list[Request] = []
    page.on("requestfinished", lambda r: done.append(r))
    page.goto(base + "/", wait_until="networkidle")
    page.get_by_label("Read token").wait_for()
    transferred = sum(r.sizes()["responseHeadersSize"] + r.sizes()["responseBodySize"] for r in done)
    count = len(done)
    plain = 0
    immutable = []
    for r in done:
        answer = httpx.get(r.url, timeout=10)  # the same file without Accept-Encoding: gzip
        plain += len(answer.content)
        if "/vendor/" in r.url:
            immutable.append(f"{r.url.split('/assets/')[1]}: {answer.headers.get('cache-control')}")
    done.clear()
    page.reload(wait_until="networkidle")
    again = sum(r.sizes()["responseHeadersSize"] + r.sizes()["responseBodySize"] for r in done)
    context.close()
    print(
        f"first load of /: {count} requests, "
        f"{transferred / 1000:.1f} KB with gzip (budget {LOAD_BUDGET_B / 1000:.0f} KB: "
        f"{'within' if transferred <= LOAD_BUDGET_B else 'OVER'}), uncompressed bodies {plain / 1000:.1f} KB "
        f"(ratio {transferred / plain:.2f}); a reload transfers {again / 1000:.1f} KB"
    )
    for line in immutable:
        print(f"  vendored {line}")


def first_live(browser: Browser, base: str, runs: int) -> None:
    context = browser.new_context(timezone_id=TZ_NAME)
    page = context.new_page()
    page.goto(base + "/")
    page.get_by_label("Read token").fill(READ_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("() => document.body.dataset.view === 'now'")
    took, bare = [], []
    for _ in range(runs):
        page.goto(base + "/?view=today")
        started = time.perf_counter()
        page.goto(base + "/?view=signin", wait_until="commit")
        page.get_by_label("Read token").wait_for()
        bare.append(time.perf_counter() - started)
        page.goto(base + "/?view=signin")  # off the page, so the next navigation starts cold
        started = time.perf_counter()
        page.goto(f"{base}/?view=now&device={HOME}", wait_until="commit")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=live-power]')?.dataset.value",
            polling="raf",
            timeout=10_000,
        )
        took.append(time.perf_counter() - started)
    context.close()
    api = []
    with httpx.Client(headers={"Authorization": f"Bearer {READ_TOKEN}"}, timeout=10) as client:
        for _ in range(runs):
            started = time.perf_counter()
            client.get(f"{base}/v1/devices/{HOME}/realtime").raise_for_status()
            api.append(time.perf_counter() - started)
    median = statistics.median(took)
    verdict = "within" if max(took) <= LIVE_BUDGET_S else "OVER"
    print(
        f"first live value on screen: median {median * 1000:.0f} ms, max {max(took) * 1000:.0f} ms over "
        f"{runs} navigations (budget {LIVE_BUDGET_S * 1000:.0f} ms: {verdict}); baselines: the page "
        f"drawing its sign-in form (no API request) {statistics.median(bare) * 1000:.0f} ms "
        f"(ratio {median / statistics.median(bare):.2f}), one realtime request from Python "
        f"{statistics.median(api) * 1000:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    database_url = asyncio.run(create_database(pg_server_url(), "p1_bench_web"))
    try:
        asyncio.run(migrate(database_url))
        with tempfile.TemporaryDirectory() as workdir:
            servers = Servers(Path(workdir), database_url, None).start()
            try:
                now = int(time.time())
                Meter(HOME).send(servers, [(now - 6 * 3600, now, 600)])
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                    first_load(browser, servers.base_url)
                    first_live(browser, servers.base_url, args.runs)
                    browser.close()
            finally:
                servers.stop()
    finally:
        asyncio.run(drop_database(database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
