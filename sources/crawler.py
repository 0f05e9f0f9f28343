"""The one entry point the crawler agent calls: every track of a playlist, from any source.

Reads Spotify (spotipy), Deezer (its public API) or a local folder, page by page; writes
nothing. Items that give no track are counted in the caller's :class:`CrawlStats` by reason, and
a track id seen twice in one crawl is yielded once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from config.settings import Settings
from schemas.playlists import PlaylistRef
from schemas.tracks import TrackDiscoveredV1
from sources.deezer import DeezerClient, track_from_deezer
from sources.errors import TrackNotFound
from sources.local import local_tracks
from sources.spotify import SpotifyPlaylists, track_from_item
from sources.stats import CrawlStats, SkipReason

__all__ = ["CrawlStats", "PlaylistCrawler"]


class PlaylistCrawler:
    """Turns a playlist reference into track records; holds the HTTP clients it needs."""

    def __init__(self, settings: Settings, deezer: DeezerClient | None = None) -> None:
        """Use ``deezer`` when given (its owner starts and stops it), else a client of its own.

        A worker shares one client between crawling and fetching, so that its rate limit holds
        for both together.
        """
        self.settings = settings
        self.spotify = SpotifyPlaylists(settings.spotify)
        self._owns_deezer = deezer is None
        self.deezer = deezer or DeezerClient(settings.deezer)

    async def start(self) -> None:
        """Open the Deezer session (Spotify's opens on first use: it needs credentials)."""
        if self._owns_deezer:
            await self.deezer.start()

    async def stop(self) -> None:
        """Close every session."""
        if self._owns_deezer:
            await self.deezer.stop()
        await asyncio.to_thread(self.spotify.close)

    async def __aenter__(self) -> PlaylistCrawler:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def tracks(self, ref: PlaylistRef, stats: CrawlStats) -> AsyncIterator[TrackDiscoveredV1]:
        """Yield one record per track of the playlist, reading it page by page.

        Args:
            ref: The playlist: Spotify id, ``deezer:<id>`` or ``local:<folder>``.
            stats: Counts pages, yielded tracks and skipped items by reason; updated as the
                crawl goes, so it is meaningful even when the crawl fails half-way.

        Yields:
            Records in playlist order, each track id once.

        Raises:
            SourceError: The playlist cannot be read. ``PlaylistNotFound`` (no such playlist),
                ``PlaylistRefused`` (local folder outside the roots), ``CredentialsMissing``,
                ``CredentialsRejected``, and ``SourceUnavailable`` (retriable) are subclasses.
        """
        seen: set[str] = set()
        async for outcome in self._outcomes(ref, stats):
            if isinstance(outcome, str):
                stats.skip(outcome)
            elif outcome.track_id in seen:
                stats.skip("duplicate")
            else:
                seen.add(outcome.track_id)
                stats.yielded += 1
                yield outcome

    async def _outcomes(
        self, ref: PlaylistRef, stats: CrawlStats
    ) -> AsyncIterator[TrackDiscoveredV1 | SkipReason]:
        if ref.source == "spotify":
            async for page in self.spotify.pages(ref.id):
                stats.pages += 1
                for entry in page:
                    yield track_from_item(entry, use_previews=self.settings.spotify.use_previews)
        elif ref.source == "deezer":
            async for entries in self.deezer.playlist_pages(ref.id):
                stats.pages += 1
                for entry in entries:
                    yield await self._deezer_track(entry)
        else:
            stats.pages += 1  # a folder is read as one page
            async for outcome in local_tracks(ref.id, self.settings):
                yield outcome

    async def _deezer_track(self, entry: Mapping[str, Any]) -> TrackDiscoveredV1 | SkipReason:
        """Playlist track objects lack the ISRC: fetch the full object for readable tracks."""
        if entry.get("readable") is False or not isinstance(entry.get("id"), int):
            return track_from_deezer(entry)
        try:
            full = await self.deezer.track(entry["id"])
        except TrackNotFound:  # listed but gone from the catalogue: keep what the list says
            return track_from_deezer(entry)
        return track_from_deezer({**entry, **full})
