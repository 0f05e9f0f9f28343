"""Spotify playlists, read with spotipy (client credentials), for track metadata only.

Reads the items of a playlist from the Web API at ``SPOTREC_SPOTIFY_API_URL`` (token from
``SPOTREC_SPOTIFY_TOKEN_URL``), every page by following ``next``; writes nothing. spotipy is
synchronous, so each call runs in a thread. :func:`track_from_item` maps one playlist item to a
record or to the reason it was skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import requests
import spotipy
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError
from urllib3.util.retry import Retry

from config.settings import SpotifySettings
from schemas.tracks import TrackDiscoveredV1
from sources.errors import (
    CredentialsMissing,
    CredentialsRejected,
    PlaylistNotFound,
    SourceError,
    SourceUnavailable,
)
from sources.stats import SkipReason
from sources.tracks import discovered, normalize_isrc, track_id

#: Items per request; the Web API's documented maximum for playlist items.
PAGE_SIZE = 50
#: Retries of one request on a connection error, HTTP 429 or 5xx, before giving up.
RETRIES = 3
#: Longest ``Retry-After`` honoured: a throttled crawl waits, but never for hours in a thread.
RETRY_AFTER_MAX_S = 30


def track_from_item(
    entry: Mapping[str, Any], *, use_previews: bool = False
) -> TrackDiscoveredV1 | SkipReason:
    """Map one playlist item (an entry of ``items``) to a record, or say why it is skipped.

    Since February 2026 the Web API puts the track under ``item`` and keeps the deprecated
    ``track`` for a while; both shapes are read, ``item`` first.

    Args:
        entry: A playlist item object as the Web API returns it.
        use_previews: Offer the item's ``preview_url`` as the first audio locator. Off by
            default: Spotify's Developer Policy forbids feeding its content to a machine-learning
            model, so only an app whose agreement allows it should turn this on.

    Returns:
        The record, or the skip reason: ``null_track``, ``local_file``, ``episode``,
        ``unsupported``, ``unavailable`` (``is_playable`` false for the requested market) or
        ``no_audio`` (no preview URL and no ISRC).
    """
    obj = entry.get("item") if entry.get("item") is not None else entry.get("track")
    if not isinstance(obj, Mapping):
        return "null_track"
    if entry.get("is_local") or obj.get("is_local"):
        return "local_file"
    kind = obj.get("type", "track")
    if kind == "episode" or obj.get("episode") is True:
        return "episode"
    if kind != "track":
        return "unsupported"
    if obj.get("is_playable") is False:
        return "unavailable"
    isrc = normalize_isrc((obj.get("external_ids") or {}).get("isrc"))
    preview = obj.get("preview_url")
    refs = [f"url:{preview}"] if use_previews and isinstance(preview, str) and preview else []
    if isrc:
        refs.append(f"isrc:{isrc}")
    spotify_id = obj.get("id")
    if not refs or not (isrc or spotify_id):
        return "no_audio"
    duration = obj.get("duration_ms")
    return discovered(
        track_id=track_id("spotify", str(spotify_id), isrc),
        name=str(obj.get("name") or ""),
        artists=[str(a["name"]) for a in obj.get("artists") or [] if a and a.get("name")],
        source="spotify",
        source_ref=str(spotify_id or obj.get("uri") or ""),
        audio_refs=refs,
        album=(obj.get("album") or {}).get("name"),
        duration_ms=int(duration) if isinstance(duration, int | float) else None,
        isrc=isrc,
    )


def _source_error(exc: Exception, what: str) -> SourceError:
    """Translate spotipy's and requests' errors into ours."""
    if isinstance(exc, SpotifyOauthError):
        msg = (
            f"Spotify refused the client credentials while reading {what} ({exc.error}): check "
            "SPOTREC_SPOTIFY_CLIENT_ID and SPOTREC_SPOTIFY_CLIENT_SECRET"
        )
        return CredentialsRejected(msg)
    if isinstance(exc, spotipy.SpotifyException):
        status = exc.http_status
        if status == 404:
            return PlaylistNotFound(f"Spotify has no {what} (HTTP 404)")
        if status == 429 or status >= 500:
            return SourceUnavailable(f"Spotify answered HTTP {status} for {what}")
        if status == 403:
            # Editorial and algorithmic playlists are closed to new apps (see docs/sources.md).
            msg = f"Spotify refused access to {what} (HTTP 403): a playlist this app may not read"
            return PlaylistNotFound(msg)
        return SourceError(f"Spotify answered HTTP {status} for {what}: {exc.msg}")
    return SourceUnavailable(f"Spotify could not be reached for {what}: {type(exc).__name__}")


class SpotifyPlaylists:
    """Reads playlist items through one spotipy client and its token, reused across crawls."""

    def __init__(self, settings: SpotifySettings, *, backoff_s: float = 0.5) -> None:
        self.settings = settings
        #: Seconds before the second retry of a request (the first is immediate), then doubled.
        self.backoff_s = backoff_s
        self._client: Any = None
        self._sessions: list[requests.Session] = []

    def _spotify(self) -> Any:
        if self._client is not None:
            return self._client
        secret = self.settings.client_secret
        if not self.settings.client_id or secret is None or not secret.get_secret_value():
            raise CredentialsMissing
        # spotipy logs request headers (Basic credentials, bearer tokens) at DEBUG: keep its
        # loggers at INFO or above so a DEBUG log level never writes a credential.
        for name in ("spotipy.client", "spotipy.oauth2"):
            logger = logging.getLogger(name)
            logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))
        # Our own sessions, closed in close(), so no socket outlives the crawler. Given a session,
        # spotipy adds no retries of its own, so they are mounted here.
        retry = Retry(
            total=RETRIES,
            backoff_factor=self.backoff_s,
            backoff_jitter=self.backoff_s,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,  # the last answer reaches spotipy, which reports its status
            retry_after_max=RETRY_AFTER_MAX_S,
        )
        auth_session, api_session = requests.Session(), requests.Session()
        for session in (auth_session, api_session):
            session.trust_env = False
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
        self._sessions = [auth_session, api_session]
        credentials = SpotifyClientCredentials(
            client_id=self.settings.client_id,
            client_secret=secret.get_secret_value(),
            requests_session=auth_session,
            requests_timeout=self.settings.timeout_s,
            cache_handler=MemoryCacheHandler(),  # never a token file on disk
        )
        # spotipy reads the token URL from this attribute; an instance value overrides the class.
        credentials.OAUTH_TOKEN_URL = self.settings.token_url
        client = spotipy.Spotify(
            auth_manager=credentials,
            requests_session=api_session,
            requests_timeout=self.settings.timeout_s,
        )
        client.prefix = self.settings.api_url.rstrip("/") + "/"  # relative paths join onto it
        self._client = client
        return client

    async def _call(self, what: str, call: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return await asyncio.to_thread(call, *args, **kw)
        except (spotipy.SpotifyException, SpotifyOauthError, requests.RequestException) as exc:
            raise _source_error(exc, what) from exc

    async def pages(self, playlist_id: str) -> AsyncIterator[list[Mapping[str, Any]]]:
        """Yield the items of a playlist, one page at a time, following ``next`` to the end.

        Args:
            playlist_id: A Spotify playlist id (URIs and URLs are parsed before this).

        Yields:
            The ``items`` of each page.

        Raises:
            CredentialsMissing: No client id or secret is configured.
            CredentialsRejected: Spotify refused them.
            PlaylistNotFound: No such playlist, or one this app may not read.
            SourceUnavailable: A network error, a timeout, HTTP 429 or 5xx, after
                :data:`RETRIES` retries with back-off.
        """
        client = self._spotify()
        what = f"playlist {playlist_id}"
        page = await self._call(
            what,
            client.playlist_items,
            playlist_id,
            limit=PAGE_SIZE,
            market=self.settings.market,
            additional_types=("track", "episode"),  # episodes must arrive to be counted
        )
        while True:
            if not isinstance(page, Mapping):
                msg = f"Spotify returned no page for {what}"
                raise SourceUnavailable(msg)
            yield list(page.get("items") or [])
            if not page.get("next"):
                return
            page = await self._call(what, client.next, page)

    def close(self) -> None:
        """Close the HTTP sessions; a later crawl opens new ones."""
        for session in self._sessions:
            session.close()
        self._sessions = []
        self._client = None
