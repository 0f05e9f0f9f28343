"""A local server that speaks the parts of the Spotify Web API the crawler uses.

Serves the token endpoint (client credentials by HTTP Basic auth, refused like Spotify with
400 ``invalid_client``), the items of the catalogue's playlist at both
``/v1/playlists/{id}/items`` (entries carry ``item`` and the deprecated ``track``) and the
legacy ``/v1/playlists/{id}/tracks`` (``track`` only), paged with ``next`` URLs pointing back
here, and the preview audio of the clips that have a ``preview_url``; ``failures`` makes the
next playlist requests answer 503. Writes nothing.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from aiohttp import web

from tests.fakes.catalogue import SPOTIFY_PREVIEWS, Catalogue, Clip, SpotifyEntry
from tests.fakes.server import FakeServer

ADDED_AT = "2026-01-05T12:00:00Z"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"status": status, "message": message}}, status=status)


class FakeSpotify(FakeServer):
    """The fake Web API over a catalogue; ``max_page`` caps the items a page holds."""

    def __init__(self, catalogue: Catalogue, *, max_page: int = 5) -> None:
        super().__init__()
        self.catalogue = catalogue
        self.max_page = max_page
        self.client_id = "spotrec-fake-client"
        self.client_secret = secrets.token_hex(16)
        self.tokens: set[str] = set()
        #: The next this many playlist requests answer HTTP 503.
        self.failures = 0

    @property
    def api_url(self) -> str:
        """What ``SPOTREC_SPOTIFY_API_URL`` is set to for this server."""
        return f"{self.base_url}/v1/"

    @property
    def token_url(self) -> str:
        """What ``SPOTREC_SPOTIFY_TOKEN_URL`` is set to for this server."""
        return f"{self.base_url}/api/token"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/token", self.token),
            web.get("/v1/playlists/{playlist}/items", self.items),
            web.get("/v1/playlists/{playlist}/tracks", self.items),
            web.get("/preview/{track}", self.preview),
        ]

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        if scheme != "Basic" or (user, password) != (self.client_id, self.client_secret):
            body = {"error": "invalid_client", "error_description": "Invalid client"}
            return web.json_response(body, status=400)
        if form.get("grant_type") != "client_credentials":
            body = {"error": "unsupported_grant_type", "error_description": "grant_type"}
            return web.json_response(body, status=400)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        )

    def _track(self, entry: SpotifyEntry, market: str | None) -> dict[str, Any] | None:
        clip: Clip | None = entry.clip
        if entry.kind == "null":
            return None
        if entry.kind == "episode":
            return {
                "type": "episode", "id": entry.spotify_id, "name": entry.name,
                "uri": f"spotify:episode:{entry.spotify_id}", "duration_ms": 1_800_000,
                "episode": True, "track": False, "is_playable": True,
                "show": {"name": "A podcast", "type": "show"},
            }  # fmt: skip
        name = clip.title if clip else entry.name
        spotify_id = clip.spotify_id if clip else entry.spotify_id
        isrc = clip.isrc if clip else entry.isrc
        obj: dict[str, Any] = {
            "type": "track", "id": spotify_id or None, "name": name,
            "uri": f"spotify:track:{spotify_id}", "episode": False, "track": True,
            "artists": [{"name": a, "type": "artist"} for a in (clip.artists if clip else ())],
            "album": {"name": clip.album if clip else "", "type": "album"},
            "duration_ms": clip.duration_ms if clip else 180_000,
            "external_ids": {"isrc": isrc} if isrc else {},
            "is_local": entry.kind == "local",
            "preview_url": (
                f"{self.base_url}/preview/{spotify_id}"
                if clip and clip.name in SPOTIFY_PREVIEWS else None
            ),
        }  # fmt: skip
        if entry.kind == "local":
            obj |= {"id": None, "uri": "spotify:local:Me:Demos:My+own+demo:200", "external_ids": {}}
        if market is not None:  # like Spotify: is_playable only when a market is asked for
            obj["is_playable"] = entry.kind != "unavailable"
        return obj

    async def items(self, request: web.Request) -> web.Response:
        if self.failures > 0:
            self.failures -= 1
            return _error(503, "Service unavailable")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            return _error(401, "No token provided")
        if token not in self.tokens:
            return _error(401, "Invalid access token")
        if request.match_info["playlist"] != self.catalogue.spotify_playlist_id:
            return _error(404, "Resource not found")
        try:
            offset = int(request.query.get("offset", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _error(400, "Invalid offset or limit")
        if offset < 0 or not 1 <= limit <= 100:
            return _error(400, "Invalid limit")
        size = min(limit, self.max_page)
        entries = self.catalogue.spotify_entries
        legacy = request.path.endswith("/tracks")
        market = request.query.get("market")
        items = []
        for entry in entries[offset : offset + size]:
            obj = self._track(entry, market)
            item: dict[str, Any] = {
                "added_at": ADDED_AT,
                "added_by": {"id": "spotrec-tests", "type": "user"},
                "is_local": entry.kind == "local",
                "track": obj,
            }
            if not legacy:
                item["item"] = obj
            items.append(item)
        url = request.url  # built from the Host header: the address the client used
        following = offset + size
        return web.json_response(
            {
                "href": str(request.url),
                "items": items,
                "limit": size,
                "offset": offset,
                "total": len(entries),
                "next": (
                    str(url.update_query(offset=following, limit=size))
                    if following < len(entries)
                    else None
                ),
                "previous": None,
            }
        )

    async def preview(self, request: web.Request) -> web.Response:
        clip = self.catalogue.by_spotify_id(request.match_info["track"])
        if clip is None or clip.name not in SPOTIFY_PREVIEWS:
            return web.Response(status=404)
        return web.Response(body=clip.data, content_type=clip.content_type)
