"""The query node's pages: the explorer at ``/``, the API reference at ``/docs``, their assets.

Reads the committed files in ``api/static/`` (plain HTML, CSS and JavaScript: nothing is built
at install time and nothing is loaded from another host); writes them to the client. Only the
files in that folder are served, by exact name.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from api.errors import json_error

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
#: The files served, by name: fixed when the module loads, so a request names nothing else.
ASSETS = {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in _TYPES}


def _file(name: str) -> web.Response:
    path = ASSETS[name]
    return web.Response(
        body=path.read_bytes(),
        content_type=_TYPES[path.suffix],
        charset="utf-8" if path.suffix != ".png" else None,
        headers={"Cache-Control": "no-cache"},
    )


async def index(request: web.Request) -> web.Response:
    """``GET /``: the explorer page."""
    return _file("index.html")


async def docs(request: web.Request) -> web.Response:
    """``GET /docs``: the API reference, rendered from ``/openapi.json`` in the browser."""
    return _file("docs.html")


async def asset(request: web.Request) -> web.Response:
    """``GET /assets/{name}``: one of the pages' scripts, styles or images."""
    name = request.match_info["name"]
    if name not in ASSETS or name.endswith(".html"):
        raise json_error(web.HTTPNotFound, f"no asset {name!r:.80}")
    return _file(name)
