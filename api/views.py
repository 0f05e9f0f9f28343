"""Request handlers: recommendations, the indexed tracks, tracks without audio, health.

Reads the current snapshot (and, for tracks without audio, Cassandra); writes JSON. Domain
errors become HTTP errors here and only here, each with a JSON ``{"error": message}`` body.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from api.cassandra import UNREACHABLE, CassandraUnavailable
from api.errors import json_error
from api.health import describe
from api.keys import cassandra_key, follower_key, holder_key, settings_key
from features.tags import CHOI2017_TAGS
from snapshots.errors import TrackNotIndexed
from snapshots.index import LoadedSnapshot, Neighbour

MAX_K = 100
MAX_PAGE = 1000
#: With a tag filter, ask the index for this many times more neighbours per round.
TAG_OVERFETCH = 4
_KNOWN_TAGS = frozenset(t.lower() for t in CHOI2017_TAGS)


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise json_error(
            web.HTTPBadRequest, f"{name} must be an integer, got {raw!r:.40}"
        ) from None
    if not low <= value <= high:
        raise json_error(
            web.HTTPBadRequest, f"{name} must be between {low} and {high}, got {value}"
        )
    return value


def _snapshot(request: web.Request) -> LoadedSnapshot:
    snapshot = request.app[holder_key].current
    if snapshot is None:
        raise json_error(
            web.HTTPServiceUnavailable, "no index snapshot loaded yet; try again shortly"
        )
    return snapshot


def _track_json(row: Any) -> dict[str, Any]:
    return {
        "track_id": row.track_id,
        "name": row.name,
        "artists": list(row.artists),
        "album": row.album,
        "tags": [[name, round(float(p), 4)] for name, p in row.tags],
    }


def _tag_param(request: web.Request) -> str | None:
    raw = request.query.get("tag")
    if raw is None:
        return None
    tag = raw.strip().lower()
    if tag not in _KNOWN_TAGS:
        raise json_error(
            web.HTTPBadRequest,
            f"unknown tag {raw!r:.40}; known tags: {', '.join(CHOI2017_TAGS)}",
        )
    return tag


def _with_tag(
    snapshot: LoadedSnapshot, track_id: str, k: int, tag: str, search_k: int
) -> list[Neighbour]:
    """The k nearest neighbours carrying ``tag``, widening the search until k are found."""
    others = len(snapshot) - 1
    fetch = min(others, k * TAG_OVERFETCH)
    while True:
        found = snapshot.neighbours(track_id, fetch, search_k)
        matches = [n for n in found if tag in {name.lower() for name, _ in n.track.tags}]
        if len(matches) >= k or fetch >= others:
            return matches[:k]
        fetch = min(others, fetch * TAG_OVERFETCH)


async def recommend(request: web.Request) -> web.Response:
    """``GET /recommend?track_id=ID&k=10[&tag=jazz]``: the k tracks that sound most like ID.

    Best first; with ``tag``, only tracks whose top tags include it.
    """
    track_id = request.query.get("track_id", "").strip()
    if not track_id:
        raise json_error(web.HTTPBadRequest, "track_id is required")
    k = _int_param(request, "k", 10, 1, MAX_K)
    tag = _tag_param(request)
    snapshot = _snapshot(request)
    search_k = request.app[settings_key].index.search_k
    try:
        # Synchronous on purpose: no await between taking the snapshot and answering, so a
        # swap can never close it under this request.
        if tag is None:
            neighbours = snapshot.neighbours(track_id, k, search_k)
        else:
            neighbours = _with_tag(snapshot, track_id, k, tag, search_k)
    except TrackNotIndexed:
        raise json_error(
            web.HTTPNotFound,
            f"track {track_id!r:.120} is not in snapshot {snapshot.manifest.version}",
        ) from None
    return web.json_response(
        {
            "track_id": track_id,
            "snapshot": snapshot.manifest.version,
            "model": snapshot.manifest.model_version,
            "tag": tag,
            "results": [
                {**_track_json(n.track), "score": round(float(n.score), 6)} for n in neighbours
            ],
        }
    )


async def tracks(request: web.Request) -> web.Response:
    """``GET /tracks?limit=&offset=``: a page of the indexed tracks, in index order."""
    limit = _int_param(request, "limit", 50, 1, MAX_PAGE)
    offset = _int_param(request, "offset", 0, 0, 2**31)
    snapshot = _snapshot(request)
    return web.json_response(
        {
            "snapshot": snapshot.manifest.version,
            "model": snapshot.manifest.model_version,
            "total": snapshot.manifest.count,
            "offset": offset,
            "limit": limit,
            "tracks": [_track_json(row) for row in snapshot.page(offset, limit)],
        }
    )


async def unavailable(request: web.Request) -> web.Response:
    """``GET /tracks/unavailable``: tracks recorded without audio, with the reason."""
    limit = _int_param(request, "limit", 50, 1, MAX_PAGE)
    offset = _int_param(request, "offset", 0, 0, 2**31)
    try:
        store = await request.app[cassandra_key].store()
        rows = await store.with_status("unavailable", offset, limit)
    except CassandraUnavailable as exc:
        raise json_error(web.HTTPServiceUnavailable, str(exc)) from None
    except UNREACHABLE as exc:
        raise json_error(
            web.HTTPServiceUnavailable,
            f"Cassandra is not answering ({describe(exc)}); try again shortly",
        ) from None
    return web.json_response(
        {
            "offset": offset,
            "limit": limit,
            "tracks": [
                {
                    "track_id": r.track_id,
                    "name": r.name,
                    "artists": r.artists,
                    "album": r.album,
                    "reason": r.audio_error,
                }
                for r in rows
            ],
        }
    )


async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready once a snapshot is loaded and the follower is not failing for too long.

    Reports the snapshot served and its age, and the health of the snapshot follower and of the
    Cassandra connection (only ``/tracks/unavailable`` needs it, so it never makes the node
    unready). 503 with the reason before the first snapshot, and while the follower has been
    failing for longer than ``SPOTREC_API_FOLLOWER_UNHEALTHY_AFTER_S``.
    """
    follower = request.app[follower_key]
    now = time.time()
    body: dict[str, Any] = {
        "follower": follower.health.as_json(now),
        "cassandra": request.app[cassandra_key].health.as_json(now),
    }
    snapshot = request.app[holder_key].current
    if snapshot is not None:
        manifest = snapshot.manifest
        body |= {
            "snapshot": manifest.version,
            "model": manifest.model_version,
            "count": manifest.count,
            "snapshot_age_s": round(max(0.0, now - manifest.built_at.timestamp()), 1),
        }
    problem = "no index snapshot loaded yet" if snapshot is None else follower.unhealthy()
    if problem is not None:
        return web.json_response({"status": "unavailable", "error": problem, **body}, status=503)
    return web.json_response({"status": "ready", **body})
