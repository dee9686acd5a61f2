"""``p1-notify run`` against real parts: readings through a real ingest (which publishes to Redis and
commits to PostgreSQL), notify processes, and a local HTTP receiver as the Apprise channels' target.

Readings are of November 2026 quarters, judged by their own time: each test writes its own quarter,
with a constant 5 kW load on a fresh device, so every figure is computed by hand:
- demand of the quarter: 5.0 kW (the import counter rises 5 kW × 15 min, and so does its mean power);
- threshold: the month's only other quarter, 09:45, is 0.3 kW (one 300 W reading), below the 2.5 kW
  floor: so 2.5 kW;
- extra cost of a 5.0 kW peak: (5.0 − 2.5) kW × 53.25 €/kW/year ÷ 12 = €11.09… → "€11.1";
- the quarter 10:00–10:15 UTC ends at 11:15 in Brussels (UTC+1 in November)."""

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from notify_kit import (
    Meter,
    Receiver,
    ingest_process,
    metric,
    metrics,
    notify_process,
    quarter_start,
    upload,
    write_config,
)

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port, wait_until

pytestmark = pytest.mark.timeout(120)

LOAD_W = 5000.0


def _device(tag: str) -> str:
    return f"n-{tag}-{uuid.uuid4().hex[:8]}"


DEV = {name: _device(name) for name in ("main", "ignored", "replica", "fail", "pg", "added")}
SECRET = "s3cret-pw-4711"


def _config(receiver: Receiver, *extra: str) -> str:
    p = receiver.port
    devices = {
        DEV["main"]: [f"json://127.0.0.1:{p}/ok/main", f"ntfy://127.0.0.1:{p}/topic-main"],
        DEV["replica"]: [f"json://127.0.0.1:{p}/ok/replica"],
        DEV["fail"]: [
            f"json://user:{SECRET}@127.0.0.1:{p}/fail/fail",
            f"json://127.0.0.1:{p}/ok/fail",
            f"ntfy://127.0.0.1:{p}/topic-fail",
        ],
    }
    for name in extra:
        devices[DEV[name]] = [f"json://127.0.0.1:{p}/ok/{name}"]
    lines = ["devices:"]
    for device, urls in devices.items():
        lines += [f"  {device}:", "    urls:"] + [f"      - {u}" for u in urls]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def ingest(workdir: Path, database_url: str, redis_url: str) -> Iterator[ServiceProcess]:
    """Ingest publishing each new latest reading to the session's Redis, as in production."""
    proc = ingest_process(workdir, database_url, redis_url, list(DEV.values())).start(60)
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


@pytest.fixture(scope="module")
def config_file(workdir: Path, receiver: Receiver) -> Path:
    return write_config(workdir / "notify.yaml", _config(receiver))


@pytest.fixture(scope="module")
def notify(workdir: Path, database_url: str, redis_url: str, config_file: Path) -> Iterator[ServiceProcess]:
    proc = notify_process(workdir, database_url, config_file, redis_url, "notify-a").start(60)
    yield proc
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def _warnings(receiver: Receiver, prefix: str) -> list[str]:
    return [r.text for r in receiver.at(prefix) if "heading for" in r.text]


def _results(receiver: Receiver, prefix: str) -> list[str]:
    return [r.text for r in receiver.at(prefix) if "peak" in r.text and "heading" not in r.text]


def _warn_quarter(ingest: ServiceProcess, device: str, day: int) -> Meter:
    """A reading at 09:59:50 UTC of ``day`` (300 W: the quarter before stays low, and the counter is known
    at 10:00), then 5 kW from 09:59:50 to 10:05:20 (a reading every 10 s): the crossing of 2.5 kW at
    10:07:30 comes within the warning rule's 180 s lead at 10:04:30."""
    meter = Meter(device, quarter_start(day, 9, 59) + timedelta(seconds=40))
    upload(ingest, device, meter.readings(10, 300.0) + meter.readings(330, LOAD_W))
    return meter


def test_the_warning_arrives_once_while_the_quarter_runs_then_the_result(
    ingest: ServiceProcess, notify: ServiceProcess, receiver: Receiver
) -> None:
    main, ignored = DEV["main"], DEV["ignored"]
    # A device not in the config, over the threshold too, written first: it must get nothing.
    upload(ingest, ignored, Meter(ignored, quarter_start(2, 9, 59)).readings(240, 8000.0))
    meter = _warn_quarter(ingest, main, 2)
    wait_until(lambda: _warnings(receiver, "/ok/main"), 20, "the warning (json)", step_s=0.1)
    wait_until(lambda: _warnings(receiver, "/topic-main"), 10, "the warning (ntfy)", step_s=0.1)
    (text,) = _warnings(receiver, "/ok/main")
    assert "heading for 5.0 kW this quarter" in text
    assert "about €11.1 more over the next 12 months" in text
    assert "before 11:15" in text
    # The rest of the quarter, still over: no second warning.
    upload(ingest, main, meter.readings(15 * 60 - 320, LOAD_W))  # up to 10:15:00
    # The next quarter's first reading completes 10:00 (ingest's demand: 5.0 kW): the result.
    upload(ingest, main, meter.readings(10, 300.0))
    wait_until(lambda: _results(receiver, "/ok/main"), 20, "the result", step_s=0.1)
    (result,) = _results(receiver, "/ok/main")
    assert "new monthly peak 5.0 kW (was 0.3)" in result
    assert "about €11.1 more over the next 12 months" in result
    assert len(_warnings(receiver, "/ok/main")) == 1
    assert len(_warnings(receiver, "/topic-main")) == 1
    assert not [r for r in receiver.received if ignored in r.text]
    assert metric(metrics(notify), "p1_notify_claims_total", kind="warning", result="won") >= 1


def test_two_replicas_and_a_restart_send_one_warning(
    workdir: Path,
    database_url: str,
    redis_url: str,
    config_file: Path,
    ingest: ServiceProcess,
    notify: ServiceProcess,
    receiver: Receiver,
) -> None:
    device = DEV["replica"]
    second = notify_process(workdir, database_url, config_file, redis_url, "notify-b").start(60)
    try:
        meter = _warn_quarter(ingest, device, 3)
        wait_until(lambda: _warnings(receiver, "/ok/replica"), 20, "the warning", step_s=0.1)

        def both_judged() -> bool:
            seen = [metric(metrics(p), "p1_notify_claims_total", kind="warning") for p in (notify, second)]
            return all(s >= 1 for s in seen)

        wait_until(both_judged, 20, "both replicas to have claimed or lost the warning")
        won = sum(
            metric(metrics(p), "p1_notify_claims_total", kind="warning", result="won")
            for p in (notify, second)
        )
        assert won >= 1
        # A restart of the second replica mid-quarter: it claims again, and loses.
        assert second.stop() in CLEAN_EXITS
        second = notify_process(workdir, database_url, config_file, redis_url, "notify-b2").start(60)
        upload(ingest, device, meter.readings(60, LOAD_W))
        wait_until(
            lambda: metric(metrics(second), "p1_notify_claims_total", kind="warning", result="lost") >= 1,
            20,
            "the restarted replica to find the warning claimed",
        )
        assert len(_warnings(receiver, "/ok/replica")) == 1
    finally:
        second.stop()


async def test_a_failing_channel_is_retried_and_the_others_still_get_theirs(
    ingest: ServiceProcess, notify: ServiceProcess, receiver: Receiver, database_url: str
) -> None:
    device = DEV["fail"]
    _warn_quarter(ingest, device, 4)
    wait_until(lambda: _warnings(receiver, "/ok/fail"), 20, "the warning on the good channel", step_s=0.1)
    wait_until(lambda: _warnings(receiver, "/topic-fail"), 10, "the warning on ntfy", step_s=0.1)
    wait_until(lambda: len(receiver.at("/fail/fail")) >= 3, 10, "three attempts on the failing channel")
    wait_until(
        lambda: (
            metric(metrics(notify), "p1_notify_delivery_failures_total", channel="json", kind="warning") == 1
        ),
        10,
        "the failure counted once",
    )
    assert len(receiver.at("/fail/fail")) == 3  # NOTIFY_ATTEMPTS (3): bounded
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT sent_at, channels FROM notifications WHERE device_id = $1 AND kind = 'warning'", device
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["sent_at"] is not None
    channels = json.loads(row["channels"])
    assert [c["ok"] for c in channels] == [False, True, True]
    assert channels[0]["attempts"] == 3
    assert SECRET not in row["channels"]
    assert SECRET not in notify.logs()
    assert "notification channel failed" in notify.logs()


def test_with_redis_down_postgresql_is_followed(
    workdir: Path, database_url: str, ingest: ServiceProcess, receiver: Receiver
) -> None:
    nothing = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    # Its own config: the device is followed by this notifier only, so the warning can come from no other.
    own = write_config(
        workdir / "notify-pg.yaml",
        f"devices:\n  {DEV['pg']}:\n    urls: ['json://127.0.0.1:{receiver.port}/ok/pg']\n",
    )
    proc = notify_process(workdir, database_url, own, nothing, "notify-pg").start(60)
    try:
        # PostgreSQL is polled for each device's newest reading: a live device's readings come seconds
        # apart, so each is seen; here each waits until the notifier has judged the one before.
        meter = Meter(DEV["pg"], quarter_start(5, 9, 59) + timedelta(seconds=40))
        for sample in meter.readings(10, 300.0) + meter.readings(330, LOAD_W):
            seen = metric(metrics(proc), "p1_notify_readings_total", source="postgres")
            upload(ingest, DEV["pg"], [sample])
            wait_until(
                lambda seen=seen: metric(metrics(proc), "p1_notify_readings_total", source="postgres") > seen,
                10,
                "the reading judged",
            )
        wait_until(lambda: _warnings(receiver, "/ok/pg"), 20, "the warning from PostgreSQL", step_s=0.1)
        assert metric(metrics(proc), "p1_notify_readings_total", source="postgres") >= 1
        assert metric(metrics(proc), "p1_notify_readings_total", source="redis") == 0
    finally:
        assert proc.stop() in CLEAN_EXITS, proc.logs()


def test_the_config_is_reloaded_and_a_bad_one_keeps_the_old(
    ingest: ServiceProcess, notify: ServiceProcess, receiver: Receiver, config_file: Path
) -> None:
    write_config(config_file, _config(receiver, "added"))
    wait_until(lambda: "config file reloaded" in notify.logs(), 10, "the reload")
    write_config(config_file, "devices:\n  x:\n    cap_kw: lots\n")
    wait_until(lambda: "config file refused" in notify.logs(), 10, "the refusal")
    assert "line 3" in notify.logs()
    # A live device goes on sending: 30 s of readings at a time until the warning comes (bounded: the
    # quarter's first 5 minutes), whenever the notifier took the new config.
    meter = _warn_quarter(ingest, DEV["added"], 6)
    for _ in range(10):
        if _warnings(receiver, "/ok/added"):
            break
        upload(ingest, DEV["added"], meter.readings(30, LOAD_W))
    wait_until(lambda: _warnings(receiver, "/ok/added"), 20, "the added device's warning", step_s=0.1)
    write_config(config_file, _config(receiver))


def test_query_lists_what_was_sent_newest_first_in_pages(
    workdir: Path, database_url: str, notify: ServiceProcess, receiver: Receiver
) -> None:
    """After the first test: the main device has its 10:00 warning and result; query lists them."""
    main = DEV["main"]
    wait_until(lambda: _results(receiver, "/ok/main"), 20, "the first test's result")
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "READ_TOKENS": f"notify-read:{main}|{DEV['fail']}",
        "LOG_LEVEL": "WARNING",
    }
    query = ServiceProcess([console_script("p1-query"), "serve", "--port", str(port)], env, port).start(60)
    try:
        with httpx.Client(base_url=query.base_url, headers={"Authorization": "Bearer notify-read"}) as http:
            url = f"/v1/devices/{main}/notifications"
            first = wait_until(
                lambda: _sent_page(http.get(url, params={"limit": 1})), 10, "the result's sent_at"
            )
            assert [n["kind"] for n in first["notifications"]] == ["result"]
            assert first["notifications"][0]["quarter_start"] == "2026-11-02T10:00:00Z"
            assert first["next_cursor"] == "1793613600r"  # 2026-11-02T10:00:00Z in epoch seconds
            second = http.get(url, params={"limit": 1, "cursor": first["next_cursor"]}).json()
            (warning,) = second["notifications"]
            assert warning["kind"] == "warning"
            assert "heading for 5.0 kW" in warning["message"]
            assert [c["ok"] for c in warning["channels"]] == [True, True]
            assert second["next_cursor"] is None
            assert http.get(url, params={"cursor": "1793613600x"}).status_code == 422
            assert http.get(f"/v1/devices/{DEV['pg']}/notifications").status_code == 404  # not in scope
            failed = http.get(f"/v1/devices/{DEV['fail']}/notifications").json()["notifications"][0]
            assert SECRET not in json.dumps(failed)
            assert failed["channels"][0] == {
                "channel": failed["channels"][0]["channel"],
                "ok": False,
                "attempts": 3,
            }
    finally:
        assert query.stop() in CLEAN_EXITS, query.logs()


def _sent_page(response: httpx.Response) -> dict[str, object] | None:
    body: dict[str, object] = response.json()
    items = body["notifications"]
    assert isinstance(items, list)
    return body if items and items[0]["sent_at"] is not None else None
