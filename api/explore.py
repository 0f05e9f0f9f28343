"""Handlers for exploring the catalogue: search, one track's state, its audio, the map, status.

Reads the serving snapshot, the views derived from it (:mod:`api.derived`), Cassandra (a
track's pipeline state, counts) and Deezer (fresh preview URLs); writes JSON, a redirect to a
preview, or a local audio file from inside the allowed roots. Every error is a JSON
``{"error": message}`` body.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from api.cassandra import UNREACHABLE
from api.derived import MAP_POINTS, MapPoint, SnapshotViews
from api.errors import json_error
from api.face import face_key
from api.keys import holder_key, settings_key
from api.request_args import current_snapshot, int_param
from api.search import MAX_QUERY
from config.settings import Settings
from features.audio import CONTENT_TYPES
from snapshots.errors import TrackNotIndexed
from snapshots.index import TrackInfo
from sources.errors import AudioError, SourceError
from sources.hosts import check_url
from sources.local import local_roots, root_of
from sources.tracks import normalize_isrc
from stores.track_state import TrackState

T = TypeVar("T")


MAX_SEARCH = 100
MAX_K = 100


def _views(request: web.Request) -> SnapshotViews:
    views = request.app[face_key].views
    current = views.current if views is not None else None
    if current is None:
        raise json_error(
            web.HTTPServiceUnavailable, "the search index is being built; try again shortly"
        )
    return current


def track_summary(info: TrackInfo) -> dict[str, Any]:
    """A snapshot row as the explorer's answers show it."""
    return {
        "track_id": info.track_id,
        "name": info.name,
        "artists": list(info.artists),
        "album": info.album,
        "tags": [[name, round(float(p), 4)] for name, p in info.tags],
    }


def _point(point: MapPoint) -> dict[str, Any]:
    return {"track_id": point.track_id, "name": point.name, "x": point.x, "y": point.y}


async def _cassandra(request: web.Request, work: Awaitable[T]) -> T:
    """Await a Cassandra read; any failure of it is a 503, never a 500."""
    try:
        return await work
    except UNREACHABLE as exc:
        raise json_error(
            web.HTTPServiceUnavailable,
            f"Cassandra is unreachable ({type(exc).__name__}); try again shortly",
        ) from None


async def _state(request: web.Request, track_id: str) -> TrackState | None:
    reader = await request.app[face_key].reader()
    if reader is None:
        raise json_error(
            web.HTTPServiceUnavailable,
            "Cassandra is unreachable (not connected); try again shortly",
        )
    return await _cassandra(request, reader.state(track_id))


def _track_id(request: web.Request) -> str:
    track_id = request.match_info["track_id"]
    if len(track_id) > 200:
        raise json_error(web.HTTPBadRequest, "track id longer than 200 characters")
    return track_id


async def search(request: web.Request) -> web.Response:
    """``GET /search?q=&limit=``: tracks whose name, artists or album match ``q``, best first."""
    query = request.query.get("q", "").strip()
    if not query:
        raise json_error(web.HTTPBadRequest, "q is required")
    if len(query) > MAX_QUERY:
        raise json_error(web.HTTPBadRequest, f"q must be at most {MAX_QUERY} characters")
    limit = int_param(request, "limit", 10, 1, MAX_SEARCH)
    snapshot = current_snapshot(request)
    views = _views(request)
    results: list[dict[str, Any]] = []
    # Over-fetch a little: views a swap behind may name a track the new snapshot dropped.
    for match in views.search.search(query, limit * 2):
        if match.track_id in snapshot and len(results) < limit:
            info = snapshot.get(match.track_id)
            results.append({**track_summary(info), "score": round(match.score, 3)})
    return web.json_response(
        {
            "query": query,
            "snapshot": snapshot.manifest.version,
            "index": views.version,
            "results": results,
        }
    )


def _playable_ref(settings: Settings, ref: str) -> bool:
    """Whether a locator might give audio to play (no network: Deezer is asked on demand)."""
    scheme, _, rest = ref.partition(":")
    if scheme in ("deezer", "isrc"):
        return True
    if scheme == "file":
        return _local_file(settings, rest) is not None
    if scheme == "url":
        try:
            check_url(rest, settings.audio.allowed_hosts)
        except (AudioError, SourceError, ValueError):
            return False
        return True
    return False


def _local_file(settings: Settings, rest: str) -> Path | None:
    """The file a ``file:`` locator names, if it lies inside an allowed root and is audio."""
    path = settings.path(Path(rest))
    if root_of(path, local_roots(settings)) is None:
        return None
    resolved = path.resolve()
    if resolved.suffix.lower() not in CONTENT_TYPES or not resolved.is_file():
        return None
    return resolved


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.replace(tzinfo=at.tzinfo or UTC).isoformat(timespec="milliseconds")


async def track(request: web.Request) -> web.Response:
    """``GET /tracks/{track_id}``: the track, where it stands in the pipeline, and its audio."""
    track_id = _track_id(request)
    snapshot = request.app[holder_key].current
    info = snapshot.get(track_id) if snapshot is not None and track_id in snapshot else None
    state = await _state(request, track_id)
    if state is None and info is None:
        raise json_error(web.HTTPNotFound, f"no track {track_id!r:.120}")
    settings = request.app[settings_key]
    refs = state.audio_refs if state is not None else []
    playable = any(_playable_ref(settings, ref) for ref in refs)
    body: dict[str, Any] = {
        "track_id": track_id,
        "name": state.name if state else info.name if info else None,
        "artists": state.artists if state else list(info.artists) if info else [],
        "album": state.album if state else info.album if info else None,
        "duration_ms": state.duration_ms if state else None,
        "isrc": state.isrc if state else None,
        "source": state.source if state else None,
        # A track only in the snapshot (its row since deleted) has no recorded state.
        "status": state.status if state else "unknown",
        "reason": state.reason if state else None,
        "audio_source": state.audio_source if state else None,
        "discovered_at": _iso(state.discovered_at) if state else None,
        "status_at": _iso(state.status_at) if state else None,
        "model_versions": state.model_versions if state else [],
        "snapshot": snapshot.manifest.version if snapshot is not None else None,
        "in_snapshot": info is not None,
        "tags": track_summary(info)["tags"] if info else [],
        "xy": list(info.xy) if info is not None and info.xy is not None else None,
        "audio": {
            "playable": playable,
            "url": f"/tracks/{_quoted(track_id)}/audio" if playable else None,
        },
    }
    return web.json_response(body)


def _quoted(track_id: str) -> str:
    return quote(track_id, safe=":")


async def track_audio(request: web.Request) -> web.StreamResponse:
    """``GET /tracks/{track_id}/audio``: a redirect to a fresh preview, or the local file.

    Previews are resolved now, because Deezer's signed URLs expire; a local file is served only
    from inside ``SPOTREC_AUDIO_LOCAL_ROOTS``. 404 when the track has no playable audio.
    """
    track_id = _track_id(request)
    state = await _state(request, track_id)
    if state is None:
        raise json_error(web.HTTPNotFound, f"no track {track_id!r:.120}")
    settings = request.app[settings_key]
    deezer = request.app[face_key].deezer
    transient: list[str] = []
    for ref in state.audio_refs:
        scheme, _, rest = ref.partition(":")
        if scheme == "file":
            path = _local_file(settings, rest)
            if path is not None:
                return web.FileResponse(
                    path, headers={"Content-Type": CONTENT_TYPES[path.suffix.lower()]}
                )
            continue
        url = rest if scheme == "url" else None
        if scheme in ("deezer", "isrc") and deezer is not None:
            try:
                if scheme == "deezer":
                    obj = await deezer.track(rest)
                else:
                    obj = await deezer.track_by_isrc(normalize_isrc(rest) or "")
            except SourceError as exc:
                if exc.retriable:
                    transient.append(str(exc))
                continue
            preview = obj.get("preview")
            readable = obj.get("readable") is not False
            url = preview if isinstance(preview, str) and preview and readable else None
        if url is None:
            continue
        try:
            checked = check_url(url, settings.audio.allowed_hosts)
        except (AudioError, SourceError, ValueError):
            continue
        raise web.HTTPFound(str(checked), headers={"Cache-Control": "no-store"})
    if transient:
        raise json_error(
            web.HTTPServiceUnavailable, f"audio source unreachable: {transient[0]:.200}"
        )
    raise json_error(web.HTTPNotFound, f"track {track_id!r:.120} has no playable audio")


async def catalogue_map(request: web.Request) -> web.Response:
    """``GET /map?limit=&track_id=&k=``: a sample of the catalogue map, and a track's place.

    With ``track_id``, ``highlight`` holds that track's point and its ``k`` nearest
    neighbours' points (whether or not they are in the sample).
    """
    limit = int_param(request, "limit", 3000, 0, MAP_POINTS)
    k = int_param(request, "k", 10, 1, MAX_K)
    track_id = request.query.get("track_id")
    snapshot = current_snapshot(request)
    views = _views(request)
    points = views.map_points
    step = max(1, -(-len(points) // limit)) if limit else 0
    sample = points[::step][:limit] if limit else ()
    highlight = None
    if track_id is not None:
        try:
            info = snapshot.get(track_id)
            neighbours = snapshot.neighbours(track_id, k, request.app[settings_key].index.search_k)
        except TrackNotIndexed:
            raise json_error(
                web.HTTPNotFound,
                f"track {track_id!r:.120} is not in snapshot {snapshot.manifest.version}",
            ) from None
        highlight = {
            "track": _placed(info),
            "neighbours": [
                {**_placed(n.track), "score": round(float(n.score), 6)} for n in neighbours
            ],
        }
    response = web.json_response(
        {
            "snapshot": snapshot.manifest.version,
            "index": views.version,
            "total": len(points),
            "points": [_point(p) for p in sample],
            "highlight": highlight,
        }
    )
    response.enable_compression()
    return response


def _placed(info: TrackInfo) -> dict[str, Any]:
    x, y = info.xy if info.xy is not None else (None, None)
    return {"track_id": info.track_id, "name": info.name, "x": x, "y": y}


async def status(request: web.Request) -> web.Response:
    """``GET /status``: the snapshot served, the search index, and the pipeline's counts."""
    snapshot = request.app[holder_key].current
    face = request.app[face_key]
    views = face.views.current if face.views is not None else None
    serving = None
    if snapshot is not None:
        manifest = snapshot.manifest
        serving = {
            "version": manifest.version,
            "model": manifest.model_version,
            "count": manifest.count,
            "built_at": _iso(manifest.built_at),
            "age_s": round((datetime.now(UTC) - manifest.built_at).total_seconds(), 3),
        }
    counts = await face.status.counts() if face.status is not None else None
    return web.json_response(
        {
            "snapshot": serving,
            "search": {
                "ready": views is not None,
                "index": views.version if views is not None else None,
                "build_s": round(views.build_s, 3) if views is not None else None,
            },
            "pipeline": {
                "tracks": counts.tracks if counts is not None else None,
                "dead_letters": counts.dead_letters if counts is not None else None,
                "counted_s_ago": round(time.monotonic() - counts.at, 3) if counts else None,
            },
        }
    )
