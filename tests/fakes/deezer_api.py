"""A local server that speaks the parts of Deezer's public API the sources layer uses.

Serves ``/playlist/{id}/tracks`` (paged by ``index``/``limit``, with ``next``), ``/track/{id}``,
``/track/isrc:{ISRC}``, errors as ``{"error": {...}}`` bodies with HTTP 200 like Deezer
(800 "no data"; code 4 "Quota limit exceeded" for the next ``quota_errors`` calls), and a CDN
route serving the clips at signed preview URLs that expire after ``preview_ttl_s``
(``?hdnea=exp=<unix time>~acl=...~hmac=<hex>``; expired or forged: 403). Writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from aiohttp import web

from tests.fakes.catalogue import Catalogue, Clip
from tests.fakes.server import FakeServer

NO_DATA = {"error": {"type": "DataException", "message": "no data", "code": 800}}
QUOTA = {"error": {"type": "Exception", "message": "Quota limit exceeded", "code": 4}}


class FakeDeezer(FakeServer):
    """The fake API and CDN over a catalogue."""

    def __init__(
        self, catalogue: Catalogue, *, preview_ttl_s: float = 900.0, max_page: int = 3
    ) -> None:
        super().__init__()
        self.catalogue = catalogue
        self.preview_ttl_s = preview_ttl_s
        self.max_page = max_page
        #: The next this many API calls answer with the quota error (HTTP 200), like Deezer.
        self.quota_errors = 0
        self._key = secrets.token_bytes(32)

    @property
    def api_url(self) -> str:
        """What ``SPOTREC_DEEZER_API_URL`` is set to for this server."""
        return f"{self.base_url}/"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/playlist/{playlist}/tracks", self.playlist_tracks),
            web.get("/track/{ref}", self.track),
            web.get("/cdn/preview/{track}", self.cdn),
        ]

    def _signature(self, deezer_id: int, expires: int) -> str:
        message = f"{deezer_id}:{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def preview_url(self, clip: Clip) -> str:
        """A freshly signed preview URL of the clip, valid for ``preview_ttl_s``."""
        expires = int(time.time() + self.preview_ttl_s)
        token = f"exp={expires}~acl=/cdn/preview/{clip.deezer_id}*~hmac="
        token += self._signature(clip.deezer_id, expires)
        return f"{self.base_url}/cdn/preview/{clip.deezer_id}?hdnea={token}"

    def _short(self, clip: Clip) -> dict[str, Any]:
        readable = self.catalogue.deezer_readable(clip)
        return {
            "id": clip.deezer_id, "readable": readable, "title": clip.title,
            "title_short": clip.title, "duration": clip.duration_ms // 1000, "rank": 100_000,
            "explicit_lyrics": False, "preview": self.preview_url(clip) if readable else "",
            "link": f"https://www.deezer.com/track/{clip.deezer_id}",
            "artist": {"id": 27, "name": clip.artists[0], "type": "artist"},
            "album": {"id": 302127, "title": clip.album, "type": "album"},
            "type": "track",
        }  # fmt: skip

    def _full(self, clip: Clip) -> dict[str, Any]:
        return self._short(clip) | {
            "isrc": self.catalogue.deezer_isrc(clip),
            "contributors": [{"name": a, "type": "artist"} for a in clip.artists],
            "track_position": 1, "disk_number": 1, "release_date": "2020-01-01",
            "bpm": 0, "gain": -9.1, "available_countries": ["FR", "US"],
        }  # fmt: skip

    def _throttled(self) -> bool:
        if self.quota_errors > 0:
            self.quota_errors -= 1
            return True
        return False

    async def playlist_tracks(self, request: web.Request) -> web.Response:
        if self._throttled():
            return web.json_response(QUOTA)
        if request.match_info["playlist"] != self.catalogue.deezer_playlist_id:
            return web.json_response(NO_DATA)
        index = int(request.query.get("index", "0"))
        size = min(int(request.query.get("limit", "25")), self.max_page)
        clips = self.catalogue.deezer_playlist
        body: dict[str, Any] = {
            "data": [self._short(clip) for clip in clips[index : index + size]],
            "total": len(clips),
            "checksum": "0" * 32,
        }
        if index + size < len(clips):
            body["next"] = str(request.url.update_query(index=index + size, limit=size))
        return web.json_response(body)

    async def track(self, request: web.Request) -> web.Response:
        if self._throttled():
            return web.json_response(QUOTA)
        ref = request.match_info["ref"]
        clip: Clip | None = None
        if ref.startswith("isrc:"):
            isrc = ref.removeprefix("isrc:")
            found = [
                c for c in self.catalogue.clips if isrc and self.catalogue.deezer_isrc(c) == isrc
            ]
            clip = found[0] if found else None
        elif ref.isdigit():
            clip = self.catalogue.by_deezer_id(int(ref))
        if clip is None:
            return web.json_response(NO_DATA)
        return web.json_response(self._full(clip))

    async def cdn(self, request: web.Request) -> web.Response:
        deezer_id = request.match_info["track"]
        clip = self.catalogue.by_deezer_id(int(deezer_id)) if deezer_id.isdigit() else None
        pairs = [part.partition("=") for part in request.query.get("hdnea", "").split("~")]
        fields = {key: value for key, _, value in pairs}
        expires = fields.get("exp", "")
        if clip is None or not self.catalogue.deezer_readable(clip) or not expires.isdigit():
            return web.Response(status=403, text="Forbidden")
        good = self._signature(clip.deezer_id, int(expires))
        if not hmac.compare_digest(good, fields.get("hmac", "")) or int(expires) < time.time():
            return web.Response(status=403, text="Forbidden")
        return web.Response(body=clip.data, content_type=clip.content_type)
