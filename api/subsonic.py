"""The OpenSubsonic ``sonicSimilarity`` extension, so players can use spotrec as sonic backend.

Reads the current snapshot; writes ``subsonic-response`` envelopes in JSON (``f=json``) or XML
(the Subsonic default). Song ids are spotrec track ids, unchanged (``isrc:...``,
``spotify:...``, ``local:<sha256>``): a music server that proxies these calls maps its own song
ids to ours, for example by ISRC. Errors follow Subsonic: HTTP 200 with ``status: failed`` and
an ``error`` of code 10 (a required parameter is missing), 70 (no such song) or 0 (anything
else), because players read the envelope, not the HTTP status. spotrec checks no Subsonic
credentials (``u``, ``p``, ``t``, ``s``, ``apiKey``): put it behind the music server or a proxy.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from xml.etree import ElementTree

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from api.keys import holder_key
from api.paths import find_path
from api.recommend_views import answer
from api.recommendations import Filters, Query, UnknownTracks
from api.request_args import off_loop, query_threads
from snapshots.index import TrackInfo
from snapshots.serving import ServingView

#: The Subsonic API version whose envelope we follow.
API_VERSION = "1.16.1"
SERVER_TYPE = "spotrec"
SERVER_VERSION = importlib.metadata.version("spotrec")
XMLNS = "http://subsonic.org/restapi"
EXTENSIONS = [{"name": "sonicSimilarity", "versions": [1]}]
DEFAULT_SIMILAR = 10
DEFAULT_PATH = 25
MAX_COUNT = 100

MISSING_PARAMETER = 10
NOT_FOUND = 70
GENERIC = 0


class SubsonicError(Exception):
    """An error answered in Subsonic's envelope."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def similarity(cosine: float) -> float:
    """Cosine in [-1, 1] as the extension's similarity in [0, 1] (1: same direction)."""
    return round(max(0.0, min(1.0, (1.0 + cosine) / 2.0)), 6)


def song(track: TrackInfo) -> dict[str, Any]:
    """A track as a Subsonic ``Child`` (a song)."""
    entry: dict[str, Any] = {
        "id": track.track_id,
        "isDir": False,
        "title": track.name or track.track_id,
        "isVideo": False,
        "type": "music",
        "mediaType": "song",
    }
    if track.album:
        entry["album"] = track.album
    if track.artists:
        entry["artist"] = ", ".join(track.artists)
        entry["displayArtist"] = entry["artist"]
    if track.isrc:
        entry["isrc"] = [track.isrc]  # OpenSubsonic: a list, a recording may have several
    return entry


def _params(request: web.Request, form: Mapping[str, str]) -> dict[str, str]:
    # Players send parameters in the query string or, with POST, as a form; either counts.
    return {**form, **request.query}


def _count(params: Mapping[str, str], default: int) -> int:
    raw = params.get("count", "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        msg = f"count must be an integer, got {raw!r:.40}"
        raise SubsonicError(GENERIC, msg) from None
    if not 1 <= value <= MAX_COUNT:
        msg = f"count must be between 1 and {MAX_COUNT}, got {value}"
        raise SubsonicError(GENERIC, msg)
    return value


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        msg = f"required parameter is missing: {name}"
        raise SubsonicError(MISSING_PARAMETER, msg)
    return value


def _snapshot(request: web.Request) -> ServingView:
    snapshot = request.app[holder_key].current
    if snapshot is None:
        msg = "no index snapshot loaded yet; try again shortly"
        raise SubsonicError(GENERIC, msg)
    return snapshot


def _known(snapshot: ServingView, track_id: str) -> None:
    if track_id not in snapshot:
        msg = f"song not found: {track_id}"
        raise SubsonicError(NOT_FOUND, msg)


async def _ping(request: web.Request, params: Mapping[str, str]) -> dict[str, Any]:
    return {}


async def _extensions(request: web.Request, params: Mapping[str, str]) -> dict[str, Any]:
    return {"openSubsonicExtensions": EXTENSIONS}


async def _similar(request: web.Request, params: Mapping[str, str]) -> dict[str, Any]:
    track_id = _required(params, "id")
    count = _count(params, DEFAULT_SIMILAR)
    snapshot = _snapshot(request)
    _known(snapshot, track_id)
    # ``/recommend``'s answer to the one seed: from its stored list when that settles it.
    found = await answer(snapshot, Query(((track_id, 1.0),), k=count), query_threads(request))
    return {
        "sonicMatch": [
            {"entry": song(r.track), "similarity": similarity(r.score)} for r in found.results
        ]
    }


async def _path(request: web.Request, params: Mapping[str, str]) -> dict[str, Any]:
    start = _required(params, "startSongId")
    end = _required(params, "endSongId")
    count = _count(params, DEFAULT_PATH)
    snapshot = _snapshot(request)
    for track_id in (start, end):
        _known(snapshot, track_id)
    if start == end:
        msg = "startSongId and endSongId must differ"
        raise SubsonicError(GENERIC, msg)
    try:
        # The path holds both ends, so a count below 2 still gives them.
        found = await off_loop(
            query_threads(request), find_path, snapshot, start, end, max(2, count), Filters()
        )
    except UnknownTracks as exc:  # the snapshot was swapped in between
        raise SubsonicError(NOT_FOUND, str(exc)) from None
    return {
        "sonicMatch": [
            {"entry": song(step.track), "similarity": similarity(step.from_start)}
            for step in found.steps
        ]
    }


Method = Callable[[web.Request, Mapping[str, str]], Awaitable[dict[str, Any]]]

#: Subsonic method name -> what it answers.
METHODS: dict[str, Method] = {
    "ping": _ping,
    "getOpenSubsonicExtensions": _extensions,
    "getSonicSimilarTracks": _similar,
    "findSonicPath": _path,
}


def envelope(body: Mapping[str, Any], *, error: SubsonicError | None = None) -> dict[str, Any]:
    """The ``subsonic-response`` object around ``body``."""
    head: dict[str, Any] = {
        "status": "failed" if error else "ok",
        "version": API_VERSION,
        "type": SERVER_TYPE,
        "serverVersion": SERVER_VERSION,
        "openSubsonic": True,
    }
    if error is not None:
        head["error"] = {"code": error.code, "message": str(error)}
    return {"subsonic-response": {**head, **body}}


def to_xml(document: Mapping[str, Any]) -> bytes:
    """The XML form of an envelope: scalars as attributes, objects and lists as elements."""
    ((name, content),) = document.items()
    root = ElementTree.Element(name, {"xmlns": XMLNS})
    _fill(root, content)
    text: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return text


def _fill(element: ElementTree.Element, content: Mapping[str, Any]) -> None:
    for key, value in content.items():
        items = value if isinstance(value, list) else [value]
        if all(isinstance(v, Mapping) for v in items) and isinstance(value, list | Mapping):
            for item in items:
                _fill(ElementTree.SubElement(element, key), item)
        elif isinstance(value, list):
            for item in items:
                ElementTree.SubElement(element, key).text = _text(item)
        else:
            element.set(key, _text(value))


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _respond(document: dict[str, Any], params: Mapping[str, str]) -> web.Response:
    if params.get("f", "xml") == "json":
        return web.json_response(document)
    return web.Response(body=to_xml(document), content_type="application/xml", charset="utf-8")


def handler(method: Method) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler answering ``method`` in the requested format."""

    async def handle(request: web.Request) -> web.Response:
        form: Mapping[str, object] = {}
        if request.method == "POST":
            try:
                form = await request.post()
            except (ValueError, HttpProcessingError):  # malformed: the query string alone counts
                form = {}
        params = _params(request, {k: str(v) for k, v in form.items()})
        try:
            return _respond(envelope(await method(request, params)), params)
        except SubsonicError as exc:
            return _respond(envelope({}, error=exc), params)

    return handle


def add_routes(app: web.Application) -> None:
    """Every method under ``/rest/``, with and without the ``.view`` suffix, GET and POST."""
    for name, method in METHODS.items():
        handle = handler(method)
        for route in (f"/rest/{name}", f"/rest/{name}.view"):
            app.router.add_get(route, handle)
            app.router.add_post(route, handle)
