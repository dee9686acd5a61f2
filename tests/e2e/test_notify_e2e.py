"""simulator → edge → ingest → Redis → notify → an Apprise JSON webhook on 127.0.0.1: a peak warned about
while its quarter still runs, once, then the quarter's result.

The meter is the simulator's `peak` profile (250 W, and a 6 kW heater from minute 2 to minute 12 of
every quarter), a Dutch meter (no Belgian capacity registers: the month's peak is ours alone), started at
2026-11-03 09:59:00Z and running 30 meter seconds per real second, so the quarter 10:00–10:15 passes in
30 s. notify judges readings by their own time. By hand:
- the quarter 09:45 has 250 W only (0.25 kW), below the 2.5 kW floor: the threshold is 2.5 kW;
- the heater starts at 10:02; projected over from then on, held 60 s, its crossing < 300 s away: the
  warning comes at about 10:03 of meter time, 12 minutes before the quarter ends;
- the quarter's demand: (6 kW × 10 min + 0.25 kW × 15 min) × 4 / 60 min = 4.25 kW; its extra cost:
  (4.25 − 2.5) kW × 53.25 €/kW/year ÷ 12 = €7.77 ("€7.8")."""

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from e2e_kit import Simulator, Stack

from p1_servicekit.testing import ServiceProcess, Webhook, console_script, free_port, wait_until

pytestmark = pytest.mark.timeout(180)
START = "2026-11-03T09:59:00+00:00"
QUARTER_END = datetime(2026, 11, 3, 10, 15, tzinfo=UTC)


Hook = tuple[int, list[tuple[str, dict[str, object]]]]


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A JSON webhook on 127.0.0.1: its port, and (path, body) of every POST, in order."""
    got: list[tuple[str, dict[str, object]]] = []
    webhook = Webhook(lambda path, raw: got.append((path, json.loads(raw))))
    yield webhook.port, got
    webhook.stop()


def test_a_peak_from_the_meter_is_warned_about_in_time_once_then_its_result(
    tmp_path: Path, database_url: str, redis_url: str, hook: Hook
) -> None:
    port, posts = hook
    device = f"e2e-notify-{uuid.uuid4().hex[:8]}"
    stack = Stack(tmp_path, database_url, device, redis_url=redis_url)
    config = tmp_path / "notify.yaml"
    config.write_text(f"devices:\n  {device}:\n    urls: ['json://127.0.0.1:{port}/hook']\n")
    notify_port = free_port()
    notify = ServiceProcess(
        [console_script("p1-notify"), "run", "--port", str(notify_port)],
        {**stack.server_env(), "NOTIFY_CONFIG": str(config)},
        notify_port,
        log_path=tmp_path / "notify.log",
    )
    try:
        ingest, notify = stack.start_ingest(wait=False), notify.start(wait=False)
        ingest.wait_ready(60)
        notify.wait_ready(60)
        extra = ("--profile", "peak", "--country", "nl", "--start", START, "--speed", "30")
        stack.sim = Simulator(tmp_path, "v2", extra=extra).start()
        stack.start_edge()

        def newest() -> datetime:
            """The newest reading ingest stored (and published)."""
            value = redis.Redis.from_url(redis_url).get(f"p1:latest:{device}")
            assert value is not None
            return datetime.fromisoformat(json.loads(value)["ts"])

        def messages() -> list[str]:
            return [str(body["message"]) for path, body in posts if path == "/hook"]

        wait_until(lambda: any("heading for" in m for m in messages()), 60, "the warning", step_s=0.1)
        at_warning = newest()
        assert at_warning < QUARTER_END, f"the warning came at {at_warning}, after the quarter"
        (warning,) = [m for m in messages() if "heading for" in m]
        assert "before 11:15" in warning  # 10:15Z in Brussels
        result = wait_until(
            lambda: next((m for m in messages() if "monthly peak" in m or "stayed under" in m), None),
            90,
            "the quarter's result",
            step_s=0.2,
        )
        kw = float(re.search(r"new monthly peak ([0-9.]+) kW", result).group(1))  # type: ignore[union-attr]
        assert abs(kw - 4.25) <= 0.1, result
        assert "about €7.8 more" in result
        assert len([m for m in messages() if "heading for" in m]) == 1
    finally:
        notify.stop()
        stack.close()
