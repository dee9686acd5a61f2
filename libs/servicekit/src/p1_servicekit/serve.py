"""Running a service under uvicorn with the limits and shutdown behaviour we want in production."""

import argparse
import os
import shutil
import tempfile
from typing import Any

import uvicorn

from p1_servicekit.http_protocol import BoundedHttpToolsProtocol
from p1_servicekit.metrics import MULTIPROC_ENV, multiprocess_dir

# Connections and tasks one worker serves at once; beyond, 503 with Retry-After (http_protocol). A
# service that holds long-lived responses (query's live streams) passes a larger figure.
DEFAULT_CONCURRENCY = 2000


def add_serve_command(commands: "argparse._SubParsersAction[Any]", what: str, port: int) -> None:
    """The ``serve [--host H] [--port N] [--workers N]`` command of a service's CLI."""
    command = commands.add_parser("serve", help=f"serve the {what} HTTP API")
    command.add_argument("--host", default="127.0.0.1")
    command.add_argument("--port", type=int, default=port)
    command.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")


def serve_command(
    args: argparse.Namespace, factory: str, log_level: str, max_concurrency: int = DEFAULT_CONCURRENCY
) -> int:
    """Runs ``serve`` as its command line (:func:`add_serve_command`) asks, until SIGTERM; exit status 0."""
    serve(
        factory,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=log_level,
        max_concurrency=max_concurrency,
    )
    return 0


def serve(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    log_level: str = "info",
    graceful_shutdown_s: int = 20,
    max_concurrency: int = DEFAULT_CONCURRENCY,
) -> None:
    """``factory`` is an import string of a zero-argument app factory (``pkg.module:func``), so that
    each worker process reads its settings once at its own start-up.

    With several workers their metrics are shared through prometheus_client's multiprocess mode: a
    fresh directory (``PROMETHEUS_MULTIPROC_DIR``, unless set already) that the spawned workers
    inherit, removed when the server exits."""
    own_dir = None
    if workers > 1 and multiprocess_dir() is None:
        own_dir = tempfile.mkdtemp(prefix="p1-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
    try:
        _run(
            factory,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            grace_s=graceful_shutdown_s,
            max_concurrency=max_concurrency,
        )
    finally:
        if own_dir is not None:
            del os.environ[MULTIPROC_ENV]
            shutil.rmtree(own_dir, ignore_errors=True)


def _run(
    factory: str, *, host: str, port: int, workers: int, log_level: str, grace_s: int, max_concurrency: int
) -> None:
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,
        # No WebSocket routes: an Upgrade request is served as plain HTTP, never handed to a WebSocket
        # library that would answer in plain text (http_protocol).
        ws="none",
        log_config=None,
        log_level=log_level.lower(),
        access_log=False,
        proxy_headers=True,
        server_header=False,
        # Bounded slow clients and idle connections; SIGTERM lets in-flight requests finish.
        timeout_keep_alive=10,
        timeout_graceful_shutdown=grace_s,
        limit_concurrency=max_concurrency,
        backlog=2048,
    )
