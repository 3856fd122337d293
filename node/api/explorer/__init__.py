"""The explorer: static pages at ``/`` that read this node's own /v1 API from the browser.

Nothing is built and nothing comes from outside the node: the files in
``static/`` are read once when the app is made and served from memory under a
content security policy that lets a page talk to this origin only, so the
explorer works on an air-gapped network and a memo can never pull in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
_CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# 'self' in connect-src also covers the websocket to this host and port (CSP level 3).
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Pages are tiny and change with the node's version: always revalidate, never serve a stale script.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str


EXPLORER_FILES = web.AppKey("explorer_files", dict[str, StaticFile])


def load_files(directory: Path = STATIC_DIR) -> dict[str, StaticFile]:
    """Every servable file by name; a file of an unknown type is a packaging mistake, not something to guess."""
    files = {}
    for path in sorted(directory.iterdir()):
        if path.suffix not in _CONTENT_TYPES:
            raise ValueError(f"{path}: the explorer serves no {path.suffix or 'suffixless'} files")
        files[path.name] = StaticFile(path.read_bytes(), _CONTENT_TYPES[path.suffix])
    assert "index.html" in files, f"the explorer's index.html is missing from {directory}"
    return files


def add_explorer(app: web.Application) -> None:
    app[EXPLORER_FILES] = load_files()
    app.router.add_get("/", index)
    app.router.add_get("/explorer/{name}", asset)


async def index(request: web.Request) -> web.Response:
    return _serve(request.app[EXPLORER_FILES]["index.html"])


async def asset(request: web.Request) -> web.Response:
    found = request.app[EXPLORER_FILES].get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    return _serve(found)


def _serve(file: StaticFile) -> web.Response:
    return web.Response(body=file.body, content_type=file.content_type, charset="utf-8", headers=_HEADERS)
