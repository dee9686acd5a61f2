"""A stop request is not a failure: tasks that end because of it leave the exit code at 0.

On SIGTERM the poll and upload tasks return on their own as soon as ``stopping`` is set; when that
happens in the same loop tick as the stop itself, the daemon must still see a requested stop (exit 0),
not a task that "ended unexpectedly" (exit 1, CRITICAL log). Found by tests/e2e (SIGTERM right after a
restart against a meter whose API was off).
"""

import asyncio
import signal
from pathlib import Path

import pytest

from p1_edge.daemon import Edge
from p1_edge.poller import Poller
from p1_edge.settings import EdgeSettings
from p1_edge.uploader import Uploader
from p1_servicekit.testing import eventually


async def _until_stopped(self: Poller | Uploader) -> None:
    await self._stopping.wait()


def test_tasks_ending_with_the_stop_request_exit_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Poller, "run", _until_stopped)
    monkeypatch.setattr(Uploader, "run", _until_stopped)
    settings = EdgeSettings(
        p1_host="127.0.0.1:9",
        ingest_url="http://127.0.0.1:9",
        device_token="t",  # type: ignore[arg-type]
        spool_path=tmp_path / "spool.sqlite",
        metrics_host="127.0.0.1",
        metrics_port=0,
    )

    async def main() -> int:
        edge = Edge(settings)
        run = asyncio.create_task(edge.run())
        await eventually(
            lambda: {t.get_name() for t in asyncio.all_tasks()} >= {"poll", "upload", "stop"},
            5,
            "the edge's poll, upload and stop tasks",
            step_s=0.01,
        )
        edge._request_stop(signal.SIGTERM)
        return await run

    # A loop of its own: Edge.run installs signal handlers and its own executor on the running loop.
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(asyncio.wait_for(main(), 30)) == 0
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
