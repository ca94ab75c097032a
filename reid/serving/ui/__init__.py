"""The web page (``/ui/``): compare, group and the gallery in a browser, as static files.

The page is plain HTML, CSS and JavaScript in ``static/``, no build step; it asks the service's
own routes (``/compare``, ``/group``, ``/gallery/...``) from the browser, with the API key the
user gives it kept for the tab (``sessionStorage``). The files hold no data, so they are served
without the key, like ``/docs.json``; every request for data needs it, as from any client.

``ui_app()`` is a Starlette app with one route per file, mounted at the service's root
(``bentoml.asgi_app(..., path="/")``): BentoML's mount of a Starlette app matches only the paths
its routes have, so the request guard in front knows each page path exactly and answers any
other with its 404, and ``/ui`` itself can redirect to ``/ui/``. Every answer carries a
Content-Security-Policy that allows the page's own origin only (no inline script or style, no
plugin, no frame around it) and ``nosniff``. The page is revalidated on each load (an ETag: a
304 when unchanged); it names its script and style with their digest (``app.js?v=...``), so
those are cached for a year and a changed file is a new name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).parent / "static"
PREFIX = "/ui/"
PAGE = "index.html"
# The files the page loads, by name, with their media type.
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
PAGE_CACHE = "no-cache"  # kept, but asked again each time: a 304 while unchanged
ASSET_CACHE = "public, max-age=31536000, immutable"  # named by digest: a change is a new name


@dataclass(frozen=True)
class StaticFile:
    """One file of the page, read once: its bytes, media type, cache rule and entity tag."""

    body: bytes
    media_type: str
    cache_control: str

    @property
    def etag(self) -> str:
        """A strong entity tag: the start of the body's sha256, quoted."""
        return f'"{digest(self.body)}"'


def digest(data: bytes) -> str:
    """16 hexadecimal digits of ``data``'s sha256: names a version of a file."""
    return hashlib.sha256(data).hexdigest()[:16]


def page_files(folder: Path = STATIC) -> dict[str, StaticFile]:
    """The page's files by path under ``/ui/`` (``""`` is the page), the page's references to
    its assets rewritten to name their digest (``"app.js"`` -> ``"app.js?v=<digest>"``)."""
    files = {name: StaticFile((folder / name).read_bytes(), kind, ASSET_CACHE) for name, kind in ASSETS.items()}
    html = (folder / PAGE).read_text(encoding="utf-8")
    for name, file in files.items():
        quoted = f'"{name}"'
        if quoted not in html:
            raise ValueError(f"{PAGE} does not load {name}")
        html = html.replace(quoted, f'"{name}?v={digest(file.body)}"')
    return {"": StaticFile(html.encode(), "text/html; charset=utf-8", PAGE_CACHE), **files}


def answer(file: StaticFile, request: Request) -> Response:
    """The file, or 304 when the request already holds this version (``If-None-Match``)."""
    headers = {**SECURITY_HEADERS, "cache-control": file.cache_control, "etag": file.etag}
    known = {tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")}
    if file.etag in known or "*" in known:
        return Response(status_code=304, headers=headers)
    return Response(file.body, media_type=file.media_type, headers=headers)


def ui_app(folder: Path = STATIC) -> Starlette:
    """The page's routes: ``GET /ui/`` (the page), ``/ui/<asset>``, and ``/ui``, which redirects
    to ``/ui/`` (the page's relative links need the slash)."""
    files = page_files(folder)

    def route(path: str, file: StaticFile) -> Route:
        async def serve(request: Request) -> Response:
            return answer(file, request)

        return Route(PREFIX + path, serve, methods=["GET"])

    async def to_page(request: Request) -> Response:
        return RedirectResponse(PREFIX, status_code=308, headers=SECURITY_HEADERS)

    routes = [route(path, file) for path, file in files.items()]
    return Starlette(routes=[Route(PREFIX.rstrip("/"), to_page, methods=["GET"]), *routes])
