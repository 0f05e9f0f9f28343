"""Deezer's public API: playlist tracks, tracks by id or by ISRC, and their preview URLs.

Reads ``SPOTREC_DEEZER_API_URL`` over one aiohttp session per client, at most
``SPOTREC_DEEZER_RATE_PER_S`` requests a second (a limiter the worker shares between all its
clients); writes nothing. Deezer reports errors as ``{"error": {...}}`` bodies, often with HTTP
200, so every body is checked: code 4 (quota) is retried with back-off (the bounded third-party
policy of ``streams.retries``), code 800 ("no data") means not found. Preview URLs are signed and
expire, so callers resolve one just before downloading it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from aiolimiter import AsyncLimiter
from yarl import URL

from config.settings import DeezerSettings
from schemas.tracks import TrackDiscoveredV1
from sources.errors import PlaylistNotFound, SourceError, SourceUnavailable, TrackNotFound
from sources.stats import SkipReason
from sources.tracks import discovered, normalize_isrc, track_id
from streams.retries import retried, third_party

logger = logging.getLogger(__name__)

#: Tracks per playlist page requested (Deezer's default is 25).
PAGE_SIZE = 100
QUOTA_EXCEEDED = 4
NO_DATA = 800


class _NoData(Exception):
    """Deezer's error 800: the object asked for does not exist."""


def track_from_deezer(obj: Mapping[str, Any]) -> TrackDiscoveredV1 | SkipReason:
    """Map a Deezer track object to a record, or say why it is skipped.

    Playlist track objects carry no ISRC; pass the full object from ``/track/{id}`` to get an
    ``isrc:`` id. Audio locators are ``deezer:<id>`` (its preview, resolved at download time),
    then ``isrc:<ISRC>`` (another Deezer track of the same recording may still be readable).

    Returns:
        The record, or ``unreadable`` (``readable: false``) or ``no_audio`` (no id).
    """
    if obj.get("readable") is False:
        return "unreadable"
    deezer_id = obj.get("id")
    if not isinstance(deezer_id, int) or deezer_id <= 0:
        return "no_audio"
    isrc = normalize_isrc(obj.get("isrc"))
    refs = [f"deezer:{deezer_id}"] + ([f"isrc:{isrc}"] if isrc else [])
    names = [c.get("name") for c in obj.get("contributors") or [] if isinstance(c, Mapping)]
    artists = [str(n) for n in names if n] or [
        str(n) for n in [(obj.get("artist") or {}).get("name")] if n
    ]
    duration = obj.get("duration")
    return discovered(
        track_id=track_id("deezer", str(deezer_id), isrc),
        name=str(obj.get("title") or ""),
        artists=artists,
        source="deezer",
        source_ref=str(deezer_id),
        audio_refs=refs,
        album=(obj.get("album") or {}).get("title"),
        duration_ms=int(duration * 1000) if isinstance(duration, int | float) else None,
        isrc=isrc,
    )


def rate_limiter(rate_per_s: float) -> AsyncLimiter:
    """At most ``rate_per_s`` requests a second, spaced evenly (no bursts); share one per worker."""
    return AsyncLimiter(1, 1.0 / rate_per_s)


class DeezerClient:
    """A Deezer API client: rate-limited, retrying throttled and failed calls with back-off."""

    def __init__(self, settings: DeezerSettings, limiter: AsyncLimiter | None = None) -> None:
        """Use ``limiter`` when given (a worker's one limit for Deezer), else one of its own."""
        self.settings = settings
        self.base = URL(settings.api_url.rstrip("/") + "/")
        self.limiter = limiter or rate_limiter(settings.rate_per_s)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP session."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=False)

    async def stop(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> DeezerClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _get_once(self, path: str, params: Mapping[str, str | int]) -> dict[str, Any]:
        if self._session is None:
            msg = "DeezerClient used before start()"
            raise RuntimeError(msg)
        await self.limiter.acquire()
        url = self.base.join(URL(path)).update_query(params)
        try:
            async with self._session.get(url) as response:
                if response.status == 429 or response.status >= 500:
                    msg = f"Deezer answered HTTP {response.status} for /{path}"
                    raise SourceUnavailable(msg)
                if response.status != 200:
                    msg = f"Deezer answered HTTP {response.status} for /{path}"
                    raise SourceError(msg)
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            msg = f"Deezer could not be reached for /{path}: {type(exc).__name__}"
            raise SourceUnavailable(msg) from exc
        except ValueError as exc:
            msg = f"Deezer answered /{path} with a body that is not JSON"
            raise SourceUnavailable(msg) from exc
        if not isinstance(body, dict):
            msg = f"Deezer answered /{path} with {type(body).__name__}, expected an object"
            raise SourceError(msg)
        error = body.get("error")
        if isinstance(error, Mapping):
            code, text = error.get("code"), error.get("message")
            if code == QUOTA_EXCEEDED:
                msg = f"Deezer quota exceeded on /{path}: {text}"
                raise SourceUnavailable(msg)
            if code == NO_DATA:
                raise _NoData(path)
            msg = f"Deezer error {code} on /{path}: {text}"
            raise SourceError(msg)
        return body

    async def _get(
        self, path: str, params: Mapping[str, str | int] | None = None
    ) -> dict[str, Any]:
        """GET ``path``; retriable failures are tried again, up to ``retries`` times."""
        policy = third_party(self.settings.retries, self.settings.backoff_s, f"Deezer /{path}")
        return await retried(policy, lambda: self._get_once(path, params or {}))

    async def playlist_pages(self, playlist_id: str) -> AsyncIterator[list[Mapping[str, Any]]]:
        """Yield the track objects of a playlist, one page at a time.

        Raises:
            PlaylistNotFound: Deezer has no such playlist.
            SourceUnavailable: Throttled or unreachable after every retry.
            SourceError: Any other error Deezer reports.
        """
        index = 0
        while True:
            try:
                page = await self._get(
                    f"playlist/{playlist_id}/tracks", {"index": index, "limit": PAGE_SIZE}
                )
            except _NoData:
                msg = f"Deezer has no playlist {playlist_id}"
                raise PlaylistNotFound(msg) from None
            data = [t for t in page.get("data") or [] if isinstance(t, Mapping)]
            yield data
            # Follow ``next`` by its index only: the host it names is Deezer's, not necessarily
            # the configured API URL.
            following = URL(str(page.get("next") or "")).query.get("index")
            if not data or following is None or not following.isdigit():
                return
            if int(following) <= index:
                return
            index = int(following)

    async def track(self, deezer_id: str | int) -> dict[str, Any]:
        """The full track object (with ``isrc`` and a fresh ``preview``) of a Deezer track.

        Raises:
            TrackNotFound: Deezer has no such track.
            SourceUnavailable: Throttled or unreachable after every retry.
        """
        if not str(deezer_id).isdigit():  # it may come from an event: never a path of our choosing
            msg = f"{deezer_id!r} is not a Deezer track id"
            raise TrackNotFound(msg)
        try:
            return await self._get(f"track/{deezer_id}")
        except _NoData:
            msg = f"Deezer has no track {deezer_id}"
            raise TrackNotFound(msg) from None

    async def track_by_isrc(self, isrc: str) -> dict[str, Any]:
        """The track object of the recording with this ISRC (an undocumented endpoint).

        Raises:
            TrackNotFound: Deezer knows no track with this ISRC.
            SourceUnavailable: Throttled or unreachable after every retry.
        """
        if normalize_isrc(isrc) != isrc:
            msg = f"{isrc!r} is not an ISRC in compact form"
            raise TrackNotFound(msg)
        try:
            return await self._get(f"track/isrc:{isrc}")
        except _NoData:
            msg = f"Deezer has no track with ISRC {isrc}"
            raise TrackNotFound(msg) from None
