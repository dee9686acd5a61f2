"""Tokens added and removed without a restart, against real ``p1-ingest serve`` and ``p1-query serve``
processes reading DEVICE_TOKENS_FILE / READ_TOKENS_FILE: a new token is taken and a removed one refused
within the deadline, in every worker; a half-written, garbage or empty file keeps the last good table,
is counted in ``p1_token_reload_total{result="rejected"}`` and logged without a token's text. The file
changes as it does in the field: an editor's rename, a write in place, a Kubernetes Secret volume's
``..data`` symlink swap. The start-up rule (no start without a good file, not both the variable and the
file) is checked in test_process.py."""

import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from p1_servicekit.testing import (
    ServiceProcess,
    assert_no_secret,
    console_script,
    free_port,
    logged,
    wait_until,
)
from p1_servicekit.testing_files import SecretVolume, write_by_rename, write_in_place

ALPHA, BRAVO, CHARLIE = "tokAlpha-8f1c2e", "tokBravo+/9d3a", "tokCharlie-77b1"
SECRETS = (ALPHA, BRAVO, CHARLIE)
# Polled once a second per worker: "within a few seconds", with room for a busy shared machine.
DEADLINE_S = 15
WORKERS = 2
# Consecutive answers, each on a new connection, that must agree: new connections spread over every
# worker's accept queue, so a worker still on the old table would show.
AGREEING = 8
_ts = itertools.count()
T0 = datetime(2026, 6, 1, tzinfo=UTC)


def ingest_probe(base: str, token: str, device: str) -> int:
    """POST one new reading of ``device``: 200 once the token writes it, 401 while it is unknown."""
    n = next(_ts)
    reading = {"ts": (T0 + timedelta(seconds=n)).isoformat(), "power_w": 100.0, "import_kwh": 1 + n / 1e4}
    body = {"device_id": device, "samples": [{**reading, "export_kwh": 0.0}]}
    r = httpx.post(base + "/v1/samples", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return r.status_code


def query_probe(base: str, token: str, _device: str) -> int:
    r = httpx.get(base + "/v1/devices", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return r.status_code


def everywhere(probe: Callable[[], int], status: int) -> bool:
    return all(probe() == status for _ in range(AGREEING))


def rejected_count(base: str, service: str) -> float:
    text = httpx.get(base + "/metrics", timeout=10).text
    m = re.search(rf'^p1_token_reload_total{{result="rejected",service="{service}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def serve(service: str, database_url: str, tokens_file: Path) -> ServiceProcess:
    port = free_port()
    variable = "DEVICE_TOKENS" if service == "ingest" else "READ_TOKENS"
    return ServiceProcess(
        [console_script(f"p1-{service}"), "serve", "--port", str(port), "--workers", str(WORKERS)],
        # The variable empty: unset, whatever the test runner's environment holds.
        {
            "DATABASE_URL": database_url,
            variable: "",
            f"{variable}_FILE": str(tokens_file),
            "LOG_LEVEL": "INFO",
        },
        port,
    )


def test_ingest_takes_tokens_added_and_removed_in_a_file_edited_in_place_or_renamed(
    database_url: str, tmp_path: Path, stopped: list[ServiceProcess]
) -> None:
    path = tmp_path / "device_tokens"
    path.write_text(f"# the first home\n{ALPHA}:tf-meter-1\n")
    proc = serve("ingest", database_url, path).start()
    stopped.append(proc)

    def status(token: str, device: str) -> Callable[[], int]:
        return lambda: ingest_probe(proc.base_url, token, device)

    assert everywhere(status(ALPHA, "tf-meter-1"), 200)
    assert everywhere(status(BRAVO, "tf-meter-2"), 401)
    write_by_rename(path, f"{ALPHA}:tf-meter-1\n# a new home\n{BRAVO}:tf-meter-2\n")
    wait_until(lambda: everywhere(status(BRAVO, "tf-meter-2"), 200), DEADLINE_S, "the added token taken")
    write_in_place(path, f"{BRAVO}:tf-meter-2\n")
    wait_until(lambda: everywhere(status(ALPHA, "tf-meter-1"), 401), DEADLINE_S, "the removed token refused")

    # Half-written: the last entry lacks its scope. Each worker rejects it once and keeps its table.
    write_in_place(path, f"{BRAVO}:tf-meter-2\n{CHARLIE}")
    wait_until(lambda: rejected_count(proc.base_url, "ingest") == WORKERS, DEADLINE_S, "both workers reject")
    assert everywhere(status(BRAVO, "tf-meter-2"), 200)
    assert everywhere(status(CHARLIE, "tf-meter-2"), 401)
    write_in_place(path, "")
    wait_until(lambda: rejected_count(proc.base_url, "ingest") == 2 * WORKERS, DEADLINE_S, "empty rejected")
    assert everywhere(status(BRAVO, "tf-meter-2"), 200)

    logs = proc.logs()
    assert logged(logs, "token file rejected, the last good table stays in force", entries=1)
    assert logged(logs, "token file reloaded", entries=2)
    assert_no_secret({"log": logs, "metrics": httpx.get(proc.base_url + "/metrics").text}, SECRETS)


def test_query_takes_a_secret_volume_update(
    database_url: str, tmp_path: Path, stopped: list[ServiceProcess]
) -> None:
    volume = SecretVolume(tmp_path / "secret", {"READ_TOKENS": f"{ALPHA}:*\n"})
    proc = serve("query", database_url, volume.path("READ_TOKENS")).start()
    stopped.append(proc)

    def status(token: str) -> Callable[[], int]:
        return lambda: query_probe(proc.base_url, token, "")

    assert everywhere(status(ALPHA), 200)
    volume.update({"READ_TOKENS": f"{BRAVO}:tf-meter-1|tf-meter-2\n"})  # rotated: a new token, the old gone
    wait_until(lambda: everywhere(status(BRAVO), 200), DEADLINE_S, "the new token taken")
    assert everywhere(status(ALPHA), 401)

    volume.update({"READ_TOKENS": f"{CHARLIE}:tf meter\n"})  # a typo in the new Secret
    wait_until(lambda: rejected_count(proc.base_url, "query") == WORKERS, DEADLINE_S, "both workers reject")
    assert everywhere(status(BRAVO), 200)
    assert everywhere(status(CHARLIE), 401)

    logs = proc.logs()
    assert logged(logs, "token file rejected, the last good table stays in force", entries=1)
    assert_no_secret({"log": logs}, SECRETS)
