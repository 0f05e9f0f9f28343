"""Handlers of ``/recommend`` (GET and POST) and ``/path``.

Reads the current snapshot through the read interface; writes JSON. Parameters are validated
by :mod:`api.recommend_params`, ranking is :mod:`api.recommendations` (one seed by id:
:mod:`api.recommend_fast`) and :mod:`api.paths`;
their errors become HTTP errors here: a bad field is a 400 naming it, unknown seeds a 404
listing them, no snapshot yet a 503, each with a JSON ``{"error": message}`` body.
"""

from __future__ import annotations

import functools
import json
import re
from concurrent.futures import Executor
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from api.errors import json_error
from api.paths import Path, find_path
from api.recommend_fast import answer_by_list, answer_by_search, plan, search_plan
from api.recommend_params import (
    DEFAULT_K,
    MAX_K,
    MAX_TRACK_ID,
    PathParams,
    RecommendParams,
    describe,
    from_query,
)
from api.recommend_plain import plain_rows
from api.recommendations import (
    Query,
    QueryError,
    Recommendations,
    Result,
    UnknownTracks,
    recommend,
)
from api.request_args import current_snapshot, off_loop, query_threads
from snapshots.index import TrackInfo
from snapshots.serving import ServingView

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` as ``model``; a 400 naming the first bad field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise json_error(web.HTTPBadRequest, describe(exc)) from None


def unknown_tracks(exc: UnknownTracks) -> web.HTTPException:
    """A 404 whose body lists the ids the snapshot does not hold."""
    body = {"error": str(exc), "unknown": list(exc.track_ids), "snapshot": exc.version}
    return web.HTTPNotFound(text=json.dumps(body), content_type="application/json")


def track_json(track: TrackInfo) -> dict[str, Any]:
    """A track's public fields."""
    return {
        "track_id": track.track_id,
        "name": track.name,
        "artists": list(track.artists),
        "album": track.album,
        "isrc": track.isrc,
        "tags": [[name, round(float(p), 4)] for name, p in track.tags],
    }


def result_json(result: Result) -> dict[str, Any]:
    """A result: the track, its score and the copies collapsed into it."""
    return {
        **track_json(result.track),
        "score": round(float(result.score), 6),
        "duplicates": list(result.duplicates),
    }


def answer_json(snapshot: ServingView, k: int, answer: Recommendations) -> dict[str, Any]:
    """The fields every recommendation answer carries."""
    return {
        "snapshot": snapshot.manifest.version,
        "model": snapshot.manifest.model_version,
        "k": k,
        "complete": len(answer.results) >= k,
        "short_reason": answer.short_reason,
        "results": [result_json(r) for r in answer.results],
    }


async def answer(
    snapshot: ServingView, query: Query, threads: Executor | None = None
) -> Recommendations:
    """The engine's answer to ``query``: from the stored lists when they settle it, else searched.

    A one-seed query by id is answered from the seed's stored neighbour list on the event loop
    (a few lookups; a small tag subset is scored there too, a larger one in a thread). When
    the list cannot settle it without tags (copies crowd it, or the lists are below the
    recall target), the engine's search runs with its candidates read in blocks
    (:func:`answer_by_search`). Every other query runs the engine. Searches run in
    ``threads`` (the node's query pool), since a wide search over a large catalogue must not
    stall other requests. A replaced snapshot stays open while a query still uses it.

    Raises:
        UnknownTracks: A seed or negative is not in the catalogue.
        QueryError: The query cannot be answered as asked.
    """
    how = plan(snapshot, query)
    if how is not None:
        if how.on_loop:
            found = answer_by_list(snapshot, query, how)
        else:
            found = await off_loop(threads, answer_by_list, snapshot, query, how)
        if found is not None:
            return found
    # Copies crowd the list, or the lists are below the recall target: the engine's search,
    # its candidates read in blocks.
    searched = search_plan(snapshot, query)
    if searched is not None:
        return await off_loop(threads, answer_by_search, snapshot, query, searched)
    return await off_loop(threads, recommend, snapshot, query)


async def _recommend(request: web.Request, query: Query, tag: str | None) -> web.Response:
    snapshot = current_snapshot(request)
    try:
        answered = await answer(snapshot, query, query_threads(request))
    except UnknownTracks as exc:
        raise unknown_tracks(exc) from None
    except QueryError as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None
    head = {
        # The first seed and tag as before several were allowed, for older clients.
        "track_id": query.seeds[0][0],
        "tag": tag,
        "seeds": [{"track_id": t, "weight": w} for t, w in query.seeds],
        "negative": list(query.negative),
        "snapshot": snapshot.manifest.version,
        "model": snapshot.manifest.model_version,
        "k": query.k,
        "complete": len(answered.results) >= query.k,
        "short_reason": answered.short_reason,
    }
    # The body is assembled from each track's JSON, encoded once per snapshot row (see
    # ``ServingView.track_json``): the same JSON as ``answer_json`` gives, at a fraction of
    # the cost.
    results = b", ".join(_result_bytes(snapshot, r) for r in answered.results)
    body = json.dumps(head).encode()[:-1] + b', "results": [' + results + b"]}"
    return web.Response(body=body, content_type="application/json")


def _plain(request: web.Request, query: Query) -> web.Response | None:
    """The commonest query's answer when no copy is involved (see :mod:`api.recommend_plain`).

    The JSON :func:`_recommend` would send, with each result's track as its snapshot stores it.
    """
    snapshot = current_snapshot(request)
    seed = query.seeds[0][0]
    row = snapshot.snapshot.row_of(seed)
    found = None if row is None else plain_rows(snapshot, row, query.k)
    if found is None:
        return None
    # "%.6f" rounds each score's exact value to 6 decimals, as round(score, 6) does: the
    # same numbers as the general path's, written with their trailing zeros.
    tails = [_RESULT_TAIL % score for score in found[1]]
    tails[-1] = tails[-1][:-2]  # no comma after the last result
    pieces = snapshot.snapshot.public_pieces(found[0], tails)
    if pieces is None:
        return None
    manifest = snapshot.manifest
    quoted = json.dumps(seed).encode()
    head = _plain_head(manifest.version, manifest.model_version, query.k)
    body = b"".join(
        [b'{"track_id": ', quoted, b', "tag": null, "seeds": [{"track_id": ', quoted, head]
        + pieces
        + [b"]}"]
    )
    return web.Response(body=body, content_type="application/json")


#: What follows a result's track in :func:`_plain`'s answer: its score and no duplicates.
_RESULT_TAIL = b', "score": %.6f, "duplicates": []}, '


@functools.lru_cache(maxsize=1024)
def _plain_head(version: str, model: str, k: int) -> bytes:
    """The fields of :func:`_plain`'s answer after the seed, up to the results' opening."""
    tail = {
        "negative": [],
        "snapshot": version,
        "model": model,
        "k": k,
        "complete": True,
        "short_reason": None,
    }
    return b', "weight": 1.0}], ' + json.dumps(tail).encode()[1:-1] + b', "results": ['


def _result_bytes(snapshot: ServingView, result: Result) -> bytes:
    track = snapshot.track_json(result.track, lambda: json.dumps(track_json(result.track)))
    tail = f', "score": {round(float(result.score), 6)!r}, "duplicates": '
    return track[:-1] + tail.encode() + json.dumps(list(result.duplicates)).encode() + b"}"


#: ``track_id=ID[&k=N]`` in either order with nothing a parser would decode: an id of
#: unreserved characters, a k of 1 to 3 digits without a leading zero.
_SIMPLE_ID = rf"([A-Za-z0-9:_.~-]{{1,{MAX_TRACK_ID}}})"
_SIMPLE_K = r"([1-9][0-9]{0,2})"
_SIMPLE = re.compile(
    rf"track_id={_SIMPLE_ID}(?:&k={_SIMPLE_K})?|k={_SIMPLE_K}&track_id={_SIMPLE_ID}"
)


def _simple_get(request: web.Request) -> Query | None:
    """``GET /recommend?track_id=ID[&k=N]``, the commonest form, read from the raw query.

    ``None`` for any other form, or anything the general parser would decode or reject
    (escapes, a k out of range...); otherwise the query ``RecommendParams`` would give.
    """
    found = _SIMPLE.fullmatch(request.rel_url.raw_query_string)
    if found is None:
        return None
    seed = found[1] or found[4]
    raw_k = found[2] or found[3]
    k = DEFAULT_K if raw_k is None else int(raw_k)
    return Query(((seed, 1.0),), k=k) if k <= MAX_K else None


async def recommend_get(request: web.Request) -> web.Response:
    """``GET /recommend?track_id=ID[&track_id=ID2...]&k=10[&tag=jazz]...``.

    The tracks that sound most like the seeds, best first; every ``POST /recommend`` field is
    a query parameter too (lists repeat it: ``exclude_artist=A&exclude_artist=B``).
    """
    simple = _simple_get(request)
    if simple is not None:
        return _plain(request, simple) or await _recommend(request, simple, None)
    if not any(v.strip() for v in request.query.getall("track_id", [])):
        raise json_error(web.HTTPBadRequest, "track_id is required")
    raw_k = request.query.get("k", "")
    if raw_k:
        # The messages of the single-seed form, which clients may match.
        try:
            k = int(raw_k)
        except ValueError:
            raise json_error(
                web.HTTPBadRequest, f"k must be an integer, got {raw_k!r:.40}"
            ) from None
        if not 1 <= k <= MAX_K:
            raise json_error(web.HTTPBadRequest, f"k must be between 1 and {MAX_K}, got {k}")
    data = from_query(request.query, RecommendParams.model_fields)
    if not raw_k:
        data.pop("k", None)
    params = parse(RecommendParams, data)
    return await _recommend(request, params.query(), params.tags[0] if params.tags else None)


async def recommend_post(request: web.Request) -> web.Response:
    """``POST /recommend`` with a JSON body: seeds (weighted or not), negatives and filters."""
    try:
        data = await request.json()
    except ValueError:
        raise json_error(web.HTTPBadRequest, "body: not valid JSON") from None
    if not isinstance(data, dict):
        raise json_error(web.HTTPBadRequest, "body: expected a JSON object")
    params = parse(RecommendParams, data)
    return await _recommend(request, params.query(), params.tags[0] if params.tags else None)


async def path(request: web.Request) -> web.Response:
    """``GET /path?from=ID&to=ID&steps=N``: N tracks from one to the other, without repeats."""
    params = parse(PathParams, from_query(request.query, PathParams.model_fields))
    snapshot = current_snapshot(request)
    try:
        found: Path = await off_loop(
            query_threads(request),
            find_path,
            snapshot,
            params.start,
            params.end,
            params.steps,
            params.filters(),
        )
    except UnknownTracks as exc:
        raise unknown_tracks(exc) from None
    except ValueError as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None
    return web.json_response(
        {
            "snapshot": snapshot.manifest.version,
            "model": snapshot.manifest.model_version,
            "from": params.start,
            "to": params.end,
            "steps": params.steps,
            "complete": len(found.steps) == params.steps,
            "short_reason": found.short_reason,
            "path": [
                {
                    **track_json(step.track),
                    "score": round(step.score, 6),
                    "from_start": round(step.from_start, 6),
                }
                for step in found.steps
            ],
        }
    )
