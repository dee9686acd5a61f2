"""The dashboard in Debian's chromium against real ingest, query, PostgreSQL and Redis: sign-in, the live
value, history across DST days, capacity equal to the API's, the device switcher, sign-out, and on every
view no console error, no request off the origin (conftest.Watched) and no serious axe violation."""

import json
import re
import time
from datetime import date, datetime, timedelta

import httpx
import pytest
from web_kit import AXE_JS, CABIN, HOME, READ_TOKEN, TZ, Seeded, Watched, reading_now

from p1_servicekit.testing import wait_until

VIEWS = ("now", "today", "history", "history&span=month", "capacity")
NBSP = "\u00a0"


def server_has(seeded: Seeded, path: str) -> bool:
    return path in seeded.servers.api("/openapi.json").json().get("paths", {})


def open_app(watched: Watched, seeded: Seeded, query: str = "view=now") -> None:
    """Opens the page at ``/?query`` and signs in on the sign-in page it is sent to."""
    page = watched.page
    if "device=" not in query:
        query += f"&device={HOME}"
    page.goto(f"{seeded.servers.base_url}/?{query}")
    page.get_by_label("Read token").fill(READ_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("() => document.body.dataset.view !== undefined")


def excuse(watched: Watched, status: int) -> None:
    """Forgets the console lines of refused requests of ``status`` that the test itself caused."""
    line = f"Failed to load resource: the server responded with a status of {status} "
    watched.errors[:] = [e for e in watched.errors if not e.startswith(line)]


def open_streams(seeded: Seeded) -> float:
    """The query process's open live streams (its metric ``p1_query_live_streams``)."""
    text = httpx.get(seeded.servers.base_url + "/metrics", timeout=5).text
    found = re.search(r"^p1_query_live_streams(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def shown_power(watched: Watched) -> str:
    return watched.page.get_by_test_id("live-power").get_attribute("data-value") or ""


def test_sign_in_refuses_a_bad_token_with_a_sentence(context_factory: object, seeded: Seeded) -> None:
    w = context_factory()  # type: ignore[operator]
    w.page.goto(seeded.servers.base_url + "/?view=history")
    w.page.get_by_label("Read token").fill("not-a-token")
    w.page.get_by_role("button", name="Sign in").click()
    assert w.page.get_by_role("alert").inner_text() == "That token was not accepted. Check it and try again."
    excuse(w, 401)  # the refused POST, logged by chromium as a failed resource: that is the point
    w.page.get_by_label("Read token").fill(READ_TOKEN)
    w.page.get_by_role("button", name="Sign in").click()
    w.page.wait_for_function("() => document.body.dataset.view === 'history'")  # where the deep link pointed


def test_live_power_is_the_apis_and_follows_a_new_upload(context_factory: object, seeded: Seeded) -> None:
    w = context_factory()  # type: ignore[operator]
    open_app(w, seeded)
    api = lambda: seeded.servers.api(f"/v1/devices/{HOME}/realtime").json()["power_w"]  # noqa: E731
    wait_until(
        lambda: shown_power(w) != "" and float(shown_power(w)) == api(), 10, "the API's power on screen"
    )
    w.page.evaluate("() => { window.__noReload = true; }")
    assert w.page.evaluate("() => document.body.dataset.live") == "stream", "not on the live stream"
    assert seeded.home.last is not None
    fresh = float(int(api()) + 1234)
    sent = time.monotonic()
    seeded.servers.upload(HOME, None, [reading_now(seeded.home.last, fresh)])
    wait_until(lambda: shown_power(w) == f"{fresh:g}", 2, f"{fresh} W on screen within 2 s of the upload")
    took = time.monotonic() - sent
    assert took <= 2
    assert w.page.evaluate("() => window.__noReload") is True, "the page was reloaded"
    assert w.page.get_by_test_id("live-power").inner_text() == f"{abs(fresh):,.0f}{NBSP}W"


@pytest.mark.parametrize(("which", "quarters", "hours"), [("spring", 92, 23), ("autumn", 100, 25)])
def test_history_of_a_dst_day_has_its_hours(
    context_factory: object, seeded: Seeded, which: str, quarters: int, hours: int
) -> None:
    day: date = getattr(seeded, which)
    w = context_factory(width=360, height=780)  # type: ignore[operator]
    open_app(w, seeded, f"view=history&span=day&at={day.isoformat()}")
    chart = w.page.get_by_test_id("hist-chart")
    chart.locator("canvas").wait_for()
    assert chart.get_attribute("data-buckets") == str(quarters)
    assert w.page.get_by_test_id("hist-hours").inner_text() == f"{hours} hours"
    assert f"{hours} hours" in chart.locator("figcaption").inner_text()
    # the day's energy on screen is the API's (import, kWh, 3 decimals in en-US)
    series = seeded.servers.api(
        f"/v1/devices/{HOME}/series",
        start=datetime(day.year, day.month, day.day, tzinfo=TZ).isoformat(),
        end=datetime.combine(day + timedelta(days=1), datetime.min.time(), TZ).isoformat(),
        bucket="1d",
        tz="Europe/Brussels",
    ).json()
    assert len(series["points"]) == 1
    expected = series["points"][0]["import_kwh"]
    assert w.page.get_by_test_id("hist-import").inner_text() == f"{expected:,.3f}{NBSP}kWh"


def test_history_pages_and_the_back_button(context_factory: object, seeded: Seeded) -> None:
    w = context_factory()  # type: ignore[operator]
    day = seeded.autumn
    open_app(w, seeded, f"view=history&span=day&at={day.isoformat()}")
    title = w.page.get_by_test_id("hist-title")
    first = title.inner_text()
    w.page.get_by_role("link", name="Next →").click()
    wait_until(lambda: title.inner_text() != first, 5, "the next day's title")
    assert f"at={date.fromordinal(day.toordinal() + 1).isoformat()}" in w.page.url
    w.page.go_back()
    wait_until(lambda: title.inner_text() == first, 5, "the first day again after Back")
    w.page.reload()
    wait_until(
        lambda: w.page.get_by_test_id("hist-title").inner_text() == first, 10, "the same day after reload"
    )
    w.page.get_by_role("link", name="Year").click()
    w.page.get_by_test_id("hist-chart").locator("canvas").wait_for()
    assert w.page.get_by_test_id("hist-chart").get_attribute("data-buckets") == "12"


def test_capacity_numbers_are_the_apis(context_factory: object, seeded: Seeded) -> None:
    month = seeded.autumn.strftime("%Y-%m")
    api = seeded.servers.api(f"/v1/devices/{HOME}/capacity", month=month, tz="Europe/Brussels").json()
    w = context_factory()  # type: ignore[operator]
    open_app(w, seeded, f"view=capacity&month={month}")
    page = w.page
    page.get_by_test_id("cap-months").wait_for()
    assert api["peak_kw"] is not None
    assert page.get_by_test_id("cap-peak").inner_text() == f"{api['peak_kw']:,.3f}{NBSP}kW"
    assert page.get_by_test_id("cap-billable").inner_text() == f"{api['billable_kw']:,.3f}{NBSP}kW"
    assert page.get_by_test_id("cap-cost").inner_text() == f"€{api['cost_eur_per_year']:,.2f}"
    assert page.get_by_test_id("cap-months").locator("tbody tr").count() == len(api["months"])
    assert page.get_by_test_id("cap-top").locator("tbody tr").count() == len(api["top_quarters"])
    sources = page.get_by_test_id("cap-months").locator("tbody tr td:nth-child(4)").all_inner_texts()
    names = {"measured": "measured", "meter": "meter's own peak"}
    assert sources == [names[m["source"]] for m in api["months"]]


# deploy/tariffs/flanders-fixed.yaml (loaded by the seeded fixture): € per kWh excl. VAT, by the year its
# plan starts, and its 6 % VAT.
IMPORT_EUR = {2025: (0.2950, 0.2480), 2026: (0.3010, 0.2540)}
EXPORT_EUR = {2025: 0.0350, 2026: 0.0300}
VAT = 1.06


def euros(value: float) -> str:
    return f"-€{-value:,.2f}" if value < 0 else f"€{value:,.2f}"


def test_history_costs_are_the_apis(context_factory: object, seeded: Seeded) -> None:
    day = seeded.autumn
    first = day.replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    series = seeded.servers.api(
        f"/v1/devices/{HOME}/series",
        start=datetime.combine(first, datetime.min.time(), TZ).isoformat(),
        end=datetime.combine(after, datetime.min.time(), TZ).isoformat(),
        bucket="1d",
        tz="Europe/Brussels",
    ).json()["points"]
    # the DST day priced by hand: each register's energy × its price of that year's plan, VAT on top
    point = next(p for p in series if p["start"].startswith(day.isoformat()))
    t1, t2 = IMPORT_EUR[min(day.year, 2026)]
    by_hand = (point["import_t1_kwh"] * t1 + point["import_t2_kwh"] * t2) * VAT
    assert point["import_cost_eur"] == pytest.approx(by_hand, abs=1e-5)
    assert point["export_revenue_eur"] == pytest.approx(
        point["export_kwh"] * EXPORT_EUR[min(day.year, 2026)] * VAT, abs=1e-5
    )

    w = context_factory(width=360, height=780)  # type: ignore[operator]
    open_app(w, seeded, f"view=history&span=month&at={first.isoformat()}")
    table = w.page.get_by_test_id("hist-costs")
    table.wait_for()
    for key, cell in (("import_cost_eur", "hist-row-cost"), ("export_revenue_eur", "hist-row-revenue")):
        shown = table.get_by_test_id(cell).evaluate_all("cells => cells.map(c => c.dataset.value)")
        assert [float(v) if v else None for v in shown] == [p[key] for p in series]
        texts = table.get_by_test_id(cell).all_inner_texts()
        assert texts == [euros(p[key]) if p[key] is not None else "—" for p in series]
    cost = sum(p["import_cost_eur"] for p in series if p["import_cost_eur"] is not None)
    revenue = sum(p["export_revenue_eur"] for p in series if p["export_revenue_eur"] is not None)
    assert w.page.get_by_test_id("hist-cost").inner_text() == euros(cost)
    assert w.page.get_by_test_id("hist-revenue").inner_text() == euros(revenue)


def test_capacity_bill_is_the_apis(context_factory: object, seeded: Seeded) -> None:
    """A past month's bill and the running month's (with its projection), each equal to the API's."""
    w = context_factory()  # type: ignore[operator]
    open_app(w, seeded, "view=now")
    for month in (seeded.autumn.strftime("%Y-%m"), seeded.today.strftime("%Y-%m")):
        bill = seeded.servers.api(f"/v1/devices/{HOME}/bill", month=month, tz="Europe/Brussels").json()
        assert bill["plans"], f"no plan priced {month}"
        assert bill["total_eur"] > 0
        w.page.goto(f"{seeded.servers.base_url}/?view=capacity&month={month}&device={HOME}")
        w.page.get_by_test_id("bill-lines").wait_for()
        assert w.page.get_by_test_id("bill-total").inner_text() == euros(bill["total_eur"])
        assert w.page.get_by_test_id("bill-lines").locator("tbody tr").count() == len(bill["lines"])
        amounts = w.page.get_by_test_id("bill-lines").locator("tbody tr td:nth-child(3)").all_inner_texts()
        assert amounts == [euros(line["amount_eur"]) for line in bill["lines"]]
        projected = w.page.get_by_test_id("bill-projected")
        if bill["partial"]:
            assert projected.inner_text() == euros(bill["projected_total_eur"])
        else:
            assert projected.count() == 0


def test_now_shows_the_last_warning(context_factory: object, seeded: Seeded) -> None:
    page = seeded.servers.api(f"/v1/devices/{HOME}/notifications").json()
    newest = next(n for n in page["notifications"] if n["kind"] == "warning")
    assert page["notifications"][0]["kind"] == "result", "the newest row is a result, not the warning"
    assert newest["message"] == seeded.notifications[1].message  # the warning of an hour ago
    w = context_factory(width=360, height=780)  # type: ignore[operator]
    open_app(w, seeded)
    shown = w.page.get_by_test_id("last-warning")
    wait_until(lambda: shown.inner_text() == newest["message"], 10, "the last warning's message")
    at = w.page.get_by_test_id("last-warning-time").get_attribute("datetime") or ""
    assert datetime.fromisoformat(at) == datetime.fromisoformat(newest["sent_at"])


def test_device_switcher(context_factory: object, seeded: Seeded) -> None:
    w = context_factory(width=360, height=780)  # type: ignore[operator]
    open_app(w, seeded, f"view=now&device={HOME}")
    switch = w.page.get_by_label("Device")
    switch.wait_for()
    assert switch.locator("option").all_inner_texts() == [CABIN, HOME]
    switch.select_option(CABIN)
    wait_until(lambda: f"device={CABIN}" in w.page.url, 5, "the cabin in the URL")
    cabin = seeded.servers.api(f"/v1/devices/{CABIN}/realtime").json()["power_w"]
    wait_until(lambda: shown_power(w) != "" and float(shown_power(w)) == cabin, 10, "the cabin's power")


def test_today_draws_both_days(context_factory: object, seeded: Seeded) -> None:
    w = context_factory()  # type: ignore[operator]
    open_app(w, seeded, "view=today")
    chart = w.page.get_by_test_id("today-chart")
    chart.locator("canvas").wait_for()
    assert int(chart.get_attribute("data-points") or 0) > 0
    legend = chart.inner_text()
    assert "Yesterday" in legend
    assert "Today" in legend


def test_quarter_card_is_capacity_now(context_factory: object, seeded: Seeded) -> None:
    w = context_factory(width=360, height=780)  # type: ignore[operator]
    open_app(w, seeded)
    api = lambda: seeded.servers.api(f"/v1/devices/{HOME}/capacity/now", tz="Europe/Brussels").json()  # noqa: E731
    shown = w.page.get_by_test_id("quarter-now")
    wait_until(
        lambda: shown.inner_text() == f"{api()['kw_so_far']:,.3f}{NBSP}kW", 10, "capacity/now's kW so far"
    )
    peak = api()["month_peak_kw"]
    assert w.page.get_by_test_id("quarter-peak").inner_text() == f"{peak:,.3f}{NBSP}kW"
    assert w.page.get_by_test_id("quarter-floor").inner_text() == f"2.500{NBSP}kW"


def test_a_refused_request_is_a_sentence(context_factory: object, seeded: Seeded) -> None:
    w = context_factory()  # type: ignore[operator]
    open_app(w, seeded, "view=history&span=day&at=1999-12-31")  # before the supported range: 422
    alert = w.page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text().startswith("The server refused the request: ")
    excuse(w, 422)  # chromium logs the refused request as a failed resource: the test asked for it


def test_sign_out_ends_the_live_stream(context_factory: object, seeded: Seeded) -> None:
    w = context_factory()  # type: ignore[operator]
    open_app(w, seeded)
    w.page.wait_for_function("() => document.body.dataset.live === 'stream'")
    wait_until(lambda: open_streams(seeded) >= 1, 5, "the page's live stream open at the server")
    w.page.get_by_role("button", name="Sign out").click()
    w.page.wait_for_function("() => document.body.dataset.live === 'closed'")
    wait_until(lambda: open_streams(seeded) == 0, 5, "no live stream open at the server after sign-out")
    w.page.get_by_label("Read token").wait_for()
    assert "view=signin" in w.page.url
    status = w.page.evaluate("() => fetch('/v1/devices').then(r => r.status)")
    assert status == 401, "the session still reads after sign-out"
    excuse(w, 401)  # that 401 is logged by chromium as a failed resource: it is what we asked


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_on_any_view(
    context_factory: object, seeded: Seeded, scheme: str
) -> None:
    # axe is evaluated into the page by the test (never served): this context lets that script in.
    w = context_factory(width=360, height=780, scheme=scheme, bypass_csp=True)  # type: ignore[operator]
    open_app(w, seeded)
    axe = AXE_JS.read_text()
    found: dict[str, list[str]] = {}
    for view in VIEWS:
        w.page.goto(f"{seeded.servers.base_url}/?view={view}&device={HOME}")
        w.page.wait_for_function(f"() => document.body.dataset.view === '{view.split('&')[0]}'")
        w.page.wait_for_function("() => !document.querySelector('main').innerText.includes('Loading')")
        w.page.add_script_tag(content=axe)
        result = w.page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        assert result["testEngine"] == {"name": "axe-core", "version": "4.14.1"}
        bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
        if bad:
            found[view] = [f"{v['id']}: {json.dumps([n['target'] for n in v['nodes']])}" for v in bad]
    assert not found, found
