"""The server is stopping: what endless responses (live streams) wait on besides their own events.

uvicorn's graceful shutdown lets every open response finish (up to the grace period) before the app's
lifespan hears anything, and a live stream never finishes by itself: it would hold the shutdown for the
whole grace period and then be cut off. Our HTTP protocol (``http_protocol``) calls ``mark_stopping`` when
uvicorn asks its connections to shut down, so such a response can end cleanly at once.
"""

import asyncio
from collections.abc import Callable

_callbacks: list[Callable[[], None]] = []
_stopping = False


def stopping() -> bool:
    return _stopping


def on_stopping(callback: Callable[[], None]) -> Callable[[], None]:
    """Calls ``callback`` once the server stops (at once if it has); returns the function that forgets it."""
    if _stopping:
        asyncio.get_running_loop().call_soon(callback)
    else:
        _callbacks.append(callback)

    def forget() -> None:
        if callback in _callbacks:
            _callbacks.remove(callback)

    return forget


def mark_stopping() -> None:
    global _stopping
    if _stopping:
        return
    _stopping = True
    for callback in list(_callbacks):
        callback()
    _callbacks.clear()
