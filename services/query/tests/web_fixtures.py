"""One query process for the dashboard's tests (sessions, static files, live streams): a token file the
tests rewrite, Redis (the live channel), short heartbeat and revocation checks, small limits."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from redis.asyncio import Redis

from p1_contracts.models import Sample
from p1_schema.redis import store_latest
from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess, console_script, free_port, wait_until

DEVICE, OTHER_DEVICE = "web-dev", "web-dev2"
READ, GONE = "web-read-token", "web-gone-token"
TOKENS = f"{READ}:{DEVICE}\n{GONE}:{DEVICE}|{OTHER_DEVICE}\n"
SECRET = "test-session-secret-0123456789abcdef"
SIGNIN_BURST = 3
LIVE_PER_TOKEN = 2
HEARTBEAT_S = 0.3


@dataclass
class WebQuery:
    proc: ServiceProcess
    token_file: Path

    @property
    def url(self) -> str:
        return self.proc.base_url

    def write_tokens(self, text: str) -> None:
        # A new file renamed over the old one, as an editor or a Secret update does.
        new = self.token_file.with_suffix(".new")
        new.write_text(text)
        new.replace(self.token_file)


def start_web(tmp: Path, database_url: str, redis_url: str) -> Iterator[WebQuery]:
    token_file = tmp / "read_tokens"
    token_file.write_text(TOKENS)
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "READ_TOKENS_FILE": str(token_file),
        "SESSION_SECRET": SECRET,
        "SIGNIN_BURST": str(SIGNIN_BURST),
        "SIGNIN_PER_MINUTE": "0.5",
        "LIVE_MAX_PER_TOKEN": str(LIVE_PER_TOKEN),
        "LIVE_HEARTBEAT_S": str(HEARTBEAT_S),
        "LIVE_REVOKE_CHECK_S": "0.2",
        "REALTIME_MEMO_S": "0",
        "LOG_LEVEL": "WARNING",
    }
    proc = ServiceProcess([console_script("p1-query"), "serve", "--port", str(port)], env, port).start()
    yield WebQuery(proc, token_file)
    assert proc.stop() in CLEAN_EXITS, proc.logs()


def sign_in(url: str, token: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/session", json={"token": token}, headers=headers, timeout=10)


def cookie_of(response: httpx.Response) -> str:
    """The value of the p1_session cookie the answer sets."""
    found = re.match(r"p1_session=([^;]*);", response.headers["set-cookie"])
    assert found is not None, response.headers["set-cookie"]
    return found.group(1)


def with_cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"p1_session={value}"}


def reading(power_w: float, ts: datetime | None = None) -> Sample:
    # Now, to the microsecond: newer than any reading a test published before (store_latest keeps the newest).
    at = ts or datetime.now(UTC)
    return Sample.model_validate({"ts": at, "power_w": power_w, "import_kwh": 1000.5, "export_kwh": 2.25})


async def publish(redis: Redis, device_id: str, sample: Sample) -> None:
    """What ingest does after its commit: the latest reading stored and published (p1_schema.redis)."""
    assert await store_latest(redis, device_id, sample)


def revoked_within(url: str, cookie: str, timeout_s: float = 5.0) -> None:
    def refused() -> bool:
        r = httpx.get(f"{url}/v1/devices", headers=with_cookie(cookie), timeout=5)
        return r.status_code == 401

    wait_until(refused, timeout_s, "the session of a removed token to be refused")
