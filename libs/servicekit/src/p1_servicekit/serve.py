"""Running a service under uvicorn with the limits and shutdown behaviour we want in production."""

import uvicorn

from .http_protocol import BoundedHttpToolsProtocol


def serve(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    log_level: str = "info",
    graceful_shutdown_s: int = 20,
) -> None:
    """``factory`` is an import string of a zero-argument app factory (``pkg.module:func``), so that
    each worker process reads its settings once at its own start-up."""
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,
        log_config=None,
        log_level=log_level.lower(),
        access_log=False,
        proxy_headers=True,
        server_header=False,
        # Bounded slow clients and idle connections; SIGTERM lets in-flight requests finish.
        timeout_keep_alive=10,
        timeout_graceful_shutdown=graceful_shutdown_s,
        limit_concurrency=2000,
        backlog=2048,
    )
