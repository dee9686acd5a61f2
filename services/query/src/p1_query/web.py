"""The dashboard's files (``p1_query/web/``, package data: the wheel and the image carry them), served
from memory at the same origin as the API.

- ``/`` and the single-page app's deep links (``DEEP_LINKS``: ``/now``, ``/history/...``) answer
  ``index.html``, not cached (``no-cache``), so a reload of any view works and a new release is seen at
  once.
- Every other file is under ``/assets/<version>/<path>``, where ``version`` is a hash of all the files'
  names and bytes taken at start-up: cached ``immutable`` for a year, and a release changes the path.
  ``index.html`` names them through the placeholder ``%ASSETS%`` (replaced by ``/assets/<version>``);
  modules import each other by relative paths, so they need no placeholder.
- Every answer carries ``SECURITY_HEADERS`` (a CSP without inline script or style and without any other
  origin) and is gzip-compressed when the client takes it: compressed once at start-up, so no
  compression middleware sits in front of the API's streams.

These routes are plain Starlette routes, not operations of the contract (the route-vs-spec check skips
them, as it does ``/openapi.json``); the files are read once, so a request can only name one of them.
"""

import gzip
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from p1_servicekit.errors import NotFound

WEB_DIR: Final = Path(__file__).parent / "web"
INDEX: Final = "index.html"
PLACEHOLDER: Final = b"%ASSETS%"
ASSETS: Final = "/assets"
# The single-page app's views: GET /<view> and /<view>/<anything> answer index.html.
DEEP_LINKS: Final = ("now", "today", "history", "capacity", "devices", "signin")
CSP: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
IMMUTABLE: Final = "public, max-age=31536000, immutable"
NO_CACHE: Final = "no-cache"
TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/vnd.microsoft.icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
_COMPRESSIBLE: Final = ("text/", "application/json", "application/manifest+json", "image/svg+xml")
_MIN_GZIP_BYTES: Final = 256


@dataclass(frozen=True, slots=True)
class WebFile:
    media_type: str
    body: bytes
    gzipped: bytes | None  # None when compression would not pay

    def response(self, request: Request, cache_control: str) -> Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
        body = self.body
        if self.gzipped is not None and _takes_gzip(request.headers.get("accept-encoding", "")):
            body = self.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=self.media_type, headers=headers)


def _takes_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _web_file(name: str, body: bytes) -> WebFile:
    media_type = TYPES.get(Path(name).suffix.lower(), "application/octet-stream")
    gzipped = None
    if media_type.startswith(_COMPRESSIBLE) and len(body) >= _MIN_GZIP_BYTES:
        # mtime=0: the same bytes on every start and every replica.
        gzipped = gzip.compress(body, compresslevel=9, mtime=0)
    return WebFile(media_type, body, gzipped)


def _served(path: Path) -> bool:
    return not any(p.startswith((".", "__")) for p in path.parts) and path.suffix not in (".py", ".pyc")


@dataclass(frozen=True)
class WebApp:
    version: str
    index: WebFile
    files: Mapping[str, WebFile]  # by path relative to the web directory, "/"-separated

    @property
    def prefix(self) -> str:
        return f"{ASSETS}/{self.version}"


def load(directory: Path = WEB_DIR) -> WebApp:
    """Every file of ``directory``, read once (a release's files do not change while it runs)."""
    raw: dict[str, bytes] = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if path.is_file() and _served(rel):
            raw[rel.as_posix()] = path.read_bytes()
    if INDEX not in raw:
        raise FileNotFoundError(f"{directory / INDEX} is missing: the query package is incomplete")
    digest = hashlib.sha256()
    for name, body in raw.items():
        digest.update(name.encode() + b"\x00" + hashlib.sha256(body).digest())
    version = digest.hexdigest()[:16]
    index = raw.pop(INDEX).replace(PLACEHOLDER, f"{ASSETS}/{version}".encode())
    return WebApp(version, _web_file(INDEX, index), {name: _web_file(name, b) for name, b in raw.items()})


def web_routes(web: WebApp) -> list[BaseRoute]:
    """The dashboard's routes, to be added after the API's (none of them shadows an API path)."""

    async def index(request: Request) -> Response:
        return web.index.response(request, NO_CACHE)

    async def asset(request: Request) -> Response:
        found = web.files.get(request.path_params["path"])
        if request.path_params["version"] != web.version or found is None:
            # An old release's path too: its index.html is no longer served, nothing should ask.
            raise NotFound("No such file.")
        return found.response(request, IMMUTABLE)

    routes: list[BaseRoute] = [Route("/", index, methods=["GET"])]
    for view in DEEP_LINKS:
        routes.append(Route(f"/{view}", index, methods=["GET"]))
        routes.append(Route(f"/{view}/{{rest:path}}", index, methods=["GET"]))
    routes.append(Route(f"{ASSETS}/{{version}}/{{path:path}}", asset, methods=["GET"]))
    return routes
