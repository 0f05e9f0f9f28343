"""Request handlers: the indexed tracks, tracks without audio, health.

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
from api.keys import cassandra_key, follower_key, holder_key
from api.request_args import current_snapshot, int_param

MAX_PAGE = 1000


def _track_json(row: Any) -> dict[str, Any]:
    return {
        "track_id": row.track_id,
        "name": row.name,
        "artists": list(row.artists),
        "album": row.album,
        "tags": [[name, round(float(p), 4)] for name, p in row.tags],
    }


async def tracks(request: web.Request) -> web.Response:
    """``GET /tracks?limit=&offset=``: a page of the indexed tracks, in index order.

    The snapshot's tracks, then those of the fresh segment (queryable before the next
    snapshot); ``total`` counts both, so paging reaches every track listed.
    """
    limit = int_param(request, "limit", 50, 1, MAX_PAGE)
    offset = int_param(request, "offset", 0, 0, 2**31)
    snapshot = current_snapshot(request)
    return web.json_response(
        {
            "snapshot": snapshot.manifest.version,
            "model": snapshot.manifest.model_version,
            "total": len(snapshot),
            "offset": offset,
            "limit": limit,
            "tracks": [_track_json(row) for row in snapshot.page(offset, limit)],
        }
    )


async def unavailable(request: web.Request) -> web.Response:
    """``GET /tracks/unavailable``: tracks recorded without audio, with the reason."""
    limit = int_param(request, "limit", 50, 1, MAX_PAGE)
    offset = int_param(request, "offset", 0, 0, 2**31)
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
            "fresh": len(snapshot.fresh.state),
            "neighbours": manifest.neighbours,
            "search_k": manifest.search_k,
            "recall": None if manifest.recall is None else dict(manifest.recall),
        }
    problem = "no index snapshot loaded yet" if snapshot is None else follower.unhealthy()
    if problem is not None:
        return web.json_response({"status": "unavailable", "error": problem, **body}, status=503)
    return web.json_response({"status": "ready", **body})
