"""The query node's API description (OpenAPI 3.1), built here in code, served at ``/openapi.json``.

Reads nothing; writes the document. Every route the router holds must be described here, with
its parameters, responses and errors: ``tests/unit/api/test_openapi.py`` compares this document
with the router, and the schemathesis test checks real answers against it.

To document a new route, add its path to :data:`PATHS` (an operation per method, built with
:func:`operation`, its schemas in :data:`SCHEMAS` when they are shared).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from api.derived import MAP_POINTS
from api.search import MAX_QUERY
from features.tags import CHOI2017_TAGS

JSON = "application/json"
Schema = dict[str, Any]


def ref(name: str) -> Schema:
    """A reference to a shared schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or ``null``."""
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    """An object with exactly these properties, all required but ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }


STRING: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
STRINGS: Schema = {"type": "array", "items": STRING}

SCHEMAS: dict[str, Schema] = {
    "Error": _obj({"error": STRING}),
    "Tags": {
        "description": "(tag, score) pairs, best first",
        "type": "array",
        "items": {
            "type": "array",
            "prefixItems": [STRING, NUMBER],
            "minItems": 2,
            "maxItems": 2,
        },
    },
    "Track": _obj(
        {
            "track_id": STRING,
            "name": nullable(STRING),
            "artists": STRINGS,
            "album": nullable(STRING),
            "tags": ref("Tags"),
        }
    ),
    "ScoredTrack": {
        "allOf": [ref("Track"), _obj({"score": NUMBER})],
    },
    "Result": {
        "allOf": [
            ref("Track"),
            _obj(
                {
                    "isrc": nullable(STRING),
                    "score": NUMBER,
                    "duplicates": {
                        "description": "other copies of the recording, collapsed into this one",
                        **STRINGS,
                    },
                }
            ),
        ],
    },
    "Answer": _obj(
        {
            "snapshot": STRING,
            "model": STRING,
            "k": INT,
            "complete": {"type": "boolean", "description": "k results were found"},
            "short_reason": nullable(STRING),
            "results": {"type": "array", "items": ref("Result")},
        }
    ),
    "Recommendations": {
        "allOf": [
            ref("Answer"),
            _obj(
                {
                    "track_id": {"type": "string", "description": "the first seed"},
                    "tag": nullable(STRING),
                    "seeds": {
                        "type": "array",
                        "items": _obj({"track_id": STRING, "weight": NUMBER}),
                    },
                    "negative": STRINGS,
                }
            ),
        ],
    },
    "AudioRecommendations": {
        "allOf": [ref("Answer"), _obj({"clip_tags": ref("Tags")})],
    },
    "Path": _obj(
        {
            "snapshot": STRING,
            "model": STRING,
            "from": STRING,
            "to": STRING,
            "steps": INT,
            "complete": {"type": "boolean"},
            "short_reason": nullable(STRING),
            "path": {
                "type": "array",
                "items": {
                    "allOf": [
                        ref("Track"),
                        _obj({"isrc": nullable(STRING), "score": NUMBER, "from_start": NUMBER}),
                    ]
                },
            },
        }
    ),
    "NotFound": _obj({"error": STRING, "unknown": STRINGS, "snapshot": STRING}),
    "SubsonicResponse": _obj(
        {
            "subsonic-response": {
                "type": "object",
                "properties": {
                    "status": {"enum": ["ok", "failed"]},
                    "version": STRING,
                    "type": STRING,
                    "serverVersion": STRING,
                    "openSubsonic": {"const": True},
                    "error": _obj({"code": INT, "message": STRING}),
                    "openSubsonicExtensions": {
                        "type": "array",
                        "items": _obj(
                            {"name": STRING, "versions": {"type": "array", "items": INT}}
                        ),
                    },
                    "sonicMatch": {
                        "type": "array",
                        "items": _obj(
                            {
                                "entry": _obj(
                                    {"id": STRING, "isDir": {"const": False}, "title": STRING}
                                ),
                                "similarity": {"type": "number", "minimum": 0, "maximum": 1},
                            }
                        ),
                    },
                },
                "required": ["status", "version", "type", "serverVersion", "openSubsonic"],
            }
        }
    ),
    "TrackPage": _obj(
        {
            "snapshot": STRING,
            "model": STRING,
            "total": INT,
            "offset": INT,
            "limit": INT,
            "tracks": {"type": "array", "items": ref("Track")},
        }
    ),
    "UnavailablePage": _obj(
        {
            "offset": INT,
            "limit": INT,
            "tracks": {
                "type": "array",
                "items": _obj(
                    {
                        "track_id": STRING,
                        "name": nullable(STRING),
                        "artists": STRINGS,
                        "album": nullable(STRING),
                        "reason": nullable(STRING),
                    }
                ),
            },
        }
    ),
    "Alive": _obj({"status": {"const": "ok"}}),
    "Health": _obj(
        {
            "last_success_age_s": nullable(NUMBER),
            "failures": INT,
            "failing_for_s": NUMBER,
            "last_error": nullable(STRING),
            "last_error_age_s": nullable(NUMBER),
        }
    ),
    "Ready": _obj(
        {
            "status": {"const": "ready"},
            "follower": ref("Health"),
            "cassandra": ref("Health"),
            "snapshot": STRING,
            "model": STRING,
            "count": INT,
            "snapshot_age_s": NUMBER,
        }
    ),
    "NotReady": _obj(
        {
            "status": {"const": "unavailable"},
            "error": STRING,
            "follower": ref("Health"),
            "cassandra": ref("Health"),
            "snapshot": STRING,
            "model": STRING,
            "count": INT,
            "snapshot_age_s": NUMBER,
        },
        optional=("snapshot", "model", "count", "snapshot_age_s"),
    ),
    "SearchResults": _obj(
        {
            "query": STRING,
            "snapshot": STRING,
            "index": {"type": "string", "description": "snapshot the search index was built from"},
            "results": {"type": "array", "items": ref("ScoredTrack")},
        }
    ),
    "TrackState": _obj(
        {
            "track_id": STRING,
            "name": nullable(STRING),
            "artists": STRINGS,
            "album": nullable(STRING),
            "duration_ms": nullable(INT),
            "isrc": nullable(STRING),
            "source": nullable(STRING),
            "status": {
                "enum": ["discovered", "stored", "extracted", "unavailable", "failed", "unknown"],
                "description": "where the track stands in the pipeline",
            },
            "reason": nullable(STRING),
            "audio_source": nullable(STRING),
            "discovered_at": nullable({"type": "string", "format": "date-time"}),
            "status_at": nullable({"type": "string", "format": "date-time"}),
            "model_versions": {
                "description": "model versions a vector of the track is stored for",
                **STRINGS,
            },
            "snapshot": nullable(STRING),
            "in_snapshot": {"type": "boolean"},
            "tags": ref("Tags"),
            "xy": nullable({"type": "array", "items": NUMBER, "minItems": 2, "maxItems": 2}),
            "audio": _obj({"playable": {"type": "boolean"}, "url": nullable(STRING)}),
        }
    ),
    "MapPoint": _obj({"track_id": STRING, "name": nullable(STRING), "x": NUMBER, "y": NUMBER}),
    "PlacedTrack": _obj(
        {
            "track_id": STRING,
            "name": nullable(STRING),
            "x": nullable(NUMBER),
            "y": nullable(NUMBER),
            "score": NUMBER,
        },
        optional=("score",),
    ),
    "Map": _obj(
        {
            "snapshot": STRING,
            "index": STRING,
            "total": INT,
            "points": {"type": "array", "items": ref("MapPoint")},
            "highlight": nullable(
                _obj(
                    {
                        "track": ref("PlacedTrack"),
                        "neighbours": {"type": "array", "items": ref("PlacedTrack")},
                    }
                )
            ),
        }
    ),
    "Status": _obj(
        {
            "snapshot": nullable(
                _obj(
                    {
                        "version": STRING,
                        "model": STRING,
                        "count": INT,
                        "built_at": STRING,
                        "age_s": NUMBER,
                    }
                )
            ),
            "search": _obj(
                {
                    "ready": {"type": "boolean"},
                    "index": nullable(STRING),
                    "build_s": nullable(NUMBER),
                }
            ),
            "pipeline": _obj(
                {
                    "tracks": nullable({"type": "object", "additionalProperties": INT}),
                    "dead_letters": nullable(INT),
                    "counted_s_ago": nullable(NUMBER),
                }
            ),
        }
    ),
}


def error(description: str) -> dict[str, Any]:
    """A response whose body is ``{"error": message}``."""
    return {"description": description, "content": {JSON: {"schema": ref("Error")}}}


def ok(schema: Schema, description: str = "OK") -> dict[str, Any]:
    """A JSON response."""
    return {"description": description, "content": {JSON: {"schema": schema}}}


def query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    """A query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def path_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    """A path parameter."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or STRING,
    }


def operation(
    summary: str,
    responses: dict[str, Any],
    *,
    parameters: list[Schema] | None = None,
    tag: str = "query",
) -> dict[str, Any]:
    """One documented method of a path."""
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if parameters:
        op["parameters"] = parameters
    return op


def _bounded(low: int, high: int, default: int) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high, "default": default}


NO_SNAPSHOT = error("no snapshot loaded yet")
BAD_REQUEST = error("a parameter is missing or out of range")
PAGE = [
    query("limit", _bounded(1, 1000, 50), "rows per page"),
    query("offset", _bounded(0, 2**31, 0), "first row"),
]
TRACK_ID = path_param(
    "track_id",
    "a track id: isrc:<ISRC>, spotify:<id>, deezer:<id> or local:<sha256> "
    "(not `unavailable`: /tracks/unavailable is its own route)",
    {"type": "string", "minLength": 1, "maxLength": 200},
)
HTML = {"description": "an HTML page", "content": {"text/html": {"schema": STRING}}}
TRACK: Schema = {"type": "string", "minLength": 1, "maxLength": 200}
NAMES: Schema = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 500},
    "maxItems": 1000,
}
DIVERSITY: Schema = {"type": "number", "minimum": 0, "maximum": 1, "default": 0}
#: Lists in a query string are kept short here so that a URL stays within the server's 8 KiB
#: request line; the JSON body of ``POST /recommend`` takes the long lists.
QUERY_ID: Schema = {"type": "string", "pattern": "^[a-z]+:[A-Za-z0-9._-]{1,72}$"}
QUERY_IDS: Schema = {"type": "array", "items": QUERY_ID, "maxItems": 5}
QUERY_NAMES: Schema = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 40},
    "maxItems": 3,
}
#: The filters every recommendation route takes (lists repeat the parameter).
FILTERS = [
    query("exclude_track", QUERY_IDS, "never return these tracks (nor copies of them)"),
    query("exclude_artist", QUERY_NAMES, "no track crediting these artists (case-insensitive)"),
    query("exclude_album", QUERY_NAMES, "no track on these albums (case-insensitive)"),
    query("max_per_artist", {"type": "integer", "minimum": 1, "maximum": 100}, "cap per artist"),
    query(
        "duplicates",
        {"enum": ["collapse", "include"], "default": "collapse"},
        "one copy of each recording (same ISRC, audio digest or vector), or every copy",
    ),
]
_TAG_LIST = {"type": "array", "items": {"enum": list(CHOI2017_TAGS)}}
RECOMMEND_BODY: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["seeds"],
    "properties": {
        "seeds": {
            "type": "array",
            "minItems": 1,
            "maxItems": 25,
            "items": {
                "anyOf": [
                    TRACK,
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["track_id"],
                        "properties": {
                            "track_id": TRACK,
                            "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000},
                        },
                    },
                ]
            },
        },
        "negative": {"type": "array", "items": TRACK, "maxItems": 25},
        "k": _bounded(1, 100, 10),
        "exclude_tracks": {"type": "array", "items": TRACK, "maxItems": 1000},
        "exclude_artists": NAMES,
        "exclude_albums": NAMES,
        "max_per_artist": nullable({"type": "integer", "minimum": 1, "maximum": 100}),
        "tags": _TAG_LIST,
        "not_tags": _TAG_LIST,
        "diversity": DIVERSITY,
        "duplicates": {"enum": ["collapse", "include"]},
    },
}
#: Subsonic answers errors with HTTP 200 and status "failed" in the envelope.
_SUBSONIC_OK = {
    "description": "the subsonic-response envelope: JSON with f=json, else XML",
    "content": {JSON: {"schema": ref("SubsonicResponse")}, "application/xml": {"schema": STRING}},
}
_SUBSONIC_COMMON = [
    query("f", {"enum": ["json", "xml"], "default": "xml"}, "answer format"),
    query("u", STRING, "user (accepted, not checked)"),
    query("v", STRING, "client's API version (accepted, not checked)"),
    query("c", STRING, "client name (accepted, not checked)"),
]
_COUNT = {"type": "integer", "minimum": 1, "maximum": 100}
_SUBSONIC_METHODS: dict[str, tuple[str, list[Schema]]] = {
    "ping": ("Subsonic ping", []),
    "getOpenSubsonicExtensions": ("The OpenSubsonic extensions served: sonicSimilarity", []),
    "getSonicSimilarTracks": (
        "Songs that sound like a song (sonicSimilarity); song ids are spotrec track ids",
        [
            query("id", TRACK, "the song", required=True),
            query("count", {**_COUNT, "default": 10}, "how many"),
        ],
    ),
    "findSonicPath": (
        "Songs from one song to another (sonicSimilarity), both ends included",
        [
            query("startSongId", TRACK, "the first song", required=True),
            query("endSongId", TRACK, "the last song", required=True),
            query("count", {**_COUNT, "default": 25}, "songs in the path"),
        ],
    ),
}
SUBSONIC_PATHS: dict[str, dict[str, Any]] = {
    f"/rest/{name}{suffix}": {
        method: operation(
            summary,
            {"200": _SUBSONIC_OK},
            parameters=[*params, *_SUBSONIC_COMMON],
            tag="opensubsonic",
        )
        for method in ("get", "post")
    }
    for name, (summary, params) in _SUBSONIC_METHODS.items()
    for suffix in ("", ".view")
}

PATHS: dict[str, dict[str, Any]] = {
    "/recommend": {
        "get": operation(
            "The k tracks that sound most like the seeds, best first (one copy of each recording)",
            {
                "200": ok(ref("Recommendations")),
                "400": BAD_REQUEST,
                "404": error("a seed or negative is not in the snapshot"),
                "503": NO_SNAPSHOT,
            },
            parameters=[
                query(
                    "track_id",
                    {**QUERY_IDS, "minItems": 1},
                    "the seeds (repeat the parameter; up to 25)",
                    required=True,
                ),
                query("negative", QUERY_IDS, "tracks to steer away from (up to 25)"),
                query("k", _bounded(1, 100, 10), "how many"),
                query(
                    "tag",
                    {"type": "array", "items": {"enum": list(CHOI2017_TAGS)}},
                    "only tracks whose top tags include one of these (case-insensitive)",
                ),
                query(
                    "not_tag",
                    {"type": "array", "items": {"enum": list(CHOI2017_TAGS)}},
                    "no track whose top tags include one of these",
                ),
                *FILTERS,
                query("diversity", DIVERSITY, "0: by similarity only; 1: by novelty only (MMR)"),
            ],
            tag="recommendations",
        ),
        "post": {
            **operation(
                "The same, from a JSON body: weighted seeds, negatives, exclusions, diversity",
                {
                    "200": ok(ref("Recommendations")),
                    "400": error("the body is not JSON, or a field is missing or out of range"),
                    "404": {
                        "description": "seeds or negatives not in the snapshot, listed",
                        "content": {JSON: {"schema": ref("NotFound")}},
                    },
                    "503": NO_SNAPSHOT,
                },
                tag="recommendations",
            ),
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": RECOMMEND_BODY}},
            },
        },
    },
    "/recommend/audio": {
        "post": {
            **operation(
                "The tracks that sound like an uploaded clip (mp3, ogg, wav or flac)",
                {
                    "200": ok(ref("AudioRecommendations")),
                    "400": BAD_REQUEST,
                    "413": error("the file is larger than SPOTREC_API_MAX_UPLOAD_BYTES"),
                    "415": error("the file is not audio the decoder reads"),
                    "422": error("the model gave no finite vector for the clip"),
                    "503": error("no snapshot loaded, or its model cannot be loaded here"),
                },
                parameters=[
                    query("k", _bounded(1, 100, 10), "how many"),
                    *FILTERS,
                    query("diversity", DIVERSITY, "MMR trade-off"),
                ],
                tag="recommendations",
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {
                        "schema": _obj({"file": {"type": "string", "format": "binary"}})
                    },
                },
            },
        }
    },
    "/path": {
        "get": operation(
            "A sequence of tracks from one to the other through the sound space, no repeats",
            {
                "200": ok(ref("Path")),
                "400": BAD_REQUEST,
                "404": error("an end is not in the snapshot"),
                "503": NO_SNAPSHOT,
            },
            parameters=[
                query("from", TRACK, "the first track", required=True),
                query("to", TRACK, "the last track", required=True),
                query("steps", _bounded(2, 100, 10), "tracks in the path, both ends included"),
                *FILTERS,
            ],
            tag="recommendations",
        )
    },
    **SUBSONIC_PATHS,
    "/tracks": {
        "get": operation(
            "A page of the indexed tracks: the snapshot's in index order, then the fresh segment's",
            {"200": ok(ref("TrackPage")), "400": BAD_REQUEST, "503": NO_SNAPSHOT},
            parameters=PAGE,
            tag="tracks",
        )
    },
    "/tracks/unavailable": {
        "get": operation(
            "Tracks recorded without audio, with the reason",
            {
                "200": ok(ref("UnavailablePage")),
                "400": BAD_REQUEST,
                "503": error("Cassandra is unreachable"),
            },
            parameters=PAGE,
            tag="tracks",
        )
    },
    "/tracks/{track_id}": {
        "get": operation(
            "One track: metadata, pipeline state, model versions, whether it is served",
            {
                "200": ok(ref("TrackState")),
                "400": BAD_REQUEST,
                "404": error("neither Cassandra nor the snapshot knows the track"),
                "503": error("Cassandra is unreachable"),
            },
            parameters=[TRACK_ID],
            tag="tracks",
        )
    },
    "/tracks/{track_id}/audio": {
        "get": operation(
            "The track's audio: a redirect to a freshly resolved preview, or the local file",
            {
                "200": {
                    "description": "a local audio file (from inside the allowed roots)",
                    "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                "302": {
                    "description": "a redirect to a preview on an allowed host",
                    "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
                },
                "400": BAD_REQUEST,
                "404": error("no such track, or no playable audio"),
                "503": error("Cassandra or the audio source is unreachable"),
            },
            parameters=[TRACK_ID],
            tag="tracks",
        )
    },
    "/search": {
        "get": operation(
            "Tracks whose name, artists or album match, best first (case and accent insensitive; "
            "every word must match a whole word or the start of one)",
            {
                "200": ok(ref("SearchResults")),
                "400": BAD_REQUEST,
                "503": error("no snapshot loaded, or its search index is being built"),
            },
            parameters=[
                query(
                    "q",
                    {"type": "string", "minLength": 1, "maxLength": MAX_QUERY},
                    "the words to find",
                    required=True,
                ),
                query("limit", _bounded(1, 100, 10), "how many"),
            ],
            tag="explore",
        )
    },
    "/map": {
        "get": operation(
            "An even sample of the catalogue map, and optionally a track and its neighbours on it",
            {
                "200": ok(ref("Map")),
                "400": BAD_REQUEST,
                "404": error("track_id is not in the snapshot"),
                "503": error("no snapshot loaded, or its map is being built"),
            },
            parameters=[
                query("limit", _bounded(0, MAP_POINTS, 3000), "most points"),
                query("track_id", STRING, "a track to place, with its neighbours"),
                query("k", _bounded(1, 100, 10), "how many neighbours to place"),
            ],
            tag="explore",
        )
    },
    "/status": {
        "get": operation(
            "The snapshot served, the search index, and the pipeline's counts",
            {"200": ok(ref("Status"))},
            tag="operations",
        )
    },
    "/healthz": {
        "get": operation("The process is alive", {"200": ok(ref("Alive"))}, tag="operations")
    },
    "/readyz": {
        "get": operation(
            "Ready once a snapshot is loaded",
            {
                "200": ok(ref("Ready")),
                "503": ok(
                    ref("NotReady"), "no snapshot loaded yet, or the follower failing too long"
                ),
            },
            tag="operations",
        )
    },
    "/metrics": {
        "get": operation(
            "Prometheus metrics of this query node",
            {
                "200": {
                    "description": "the Prometheus text format",
                    "content": {"text/plain": {"schema": STRING}},
                }
            },
            tag="operations",
        )
    },
    "/openapi.json": {
        "get": operation("This description", {"200": ok({"type": "object"})}, tag="operations")
    },
    "/docs": {"get": operation("The API reference page", {"200": HTML}, tag="pages")},
    "/": {"get": operation("The explorer page", {"200": HTML}, tag="pages")},
    "/assets/{name}": {
        "get": operation(
            "A script, style sheet or image of the pages",
            {
                "200": {
                    "description": "the file",
                    "content": {
                        "text/javascript": {"schema": STRING},
                        "text/css": {"schema": STRING},
                        "image/svg+xml": {"schema": STRING},
                        "image/png": {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                "404": error("no such asset"),
            },
            parameters=[path_param("name", "the file name")],
            tag="pages",
        )
    },
}


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "spotrec query node",
            "version": "1",
            "description": (
                "Recommendations by sound, search, track state, the catalogue map and metrics. "
                'Every error body is JSON: {"error": "..."}.'
            ),
        },
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }


_BODY = json.dumps(document()).encode()


async def spec(request: web.Request) -> web.Response:
    """``GET /openapi.json``: this API's description."""
    return web.Response(body=_BODY, content_type=JSON)
