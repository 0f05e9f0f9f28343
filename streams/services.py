"""The worker's long-lived connections, opened once when the worker starts and closed at stop.

Reads the settings; holds a Cassandra session (and the track store over it), the object store,
the playlist crawler, the audio fetcher, and the feature extractor (loaded on first use: only
workers that extract pay for TensorFlow and the weights).
"""

from __future__ import annotations

import asyncio

import faust

from config.settings import Settings
from features.extractor import Extractor, load_extractor
from sources.crawler import PlaylistCrawler
from sources.deezer import DeezerClient
from sources.download import AudioFetcher
from stores.cassandra import CassandraSession
from stores.objects import ObjectStore
from stores.tracks import TrackStore
from streams.app import app, settings


class Resources(faust.Service):
    """Connections shared by every agent of one worker process."""

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]  # mode.Service keyword arguments
        self.settings = settings
        self.db = CassandraSession(settings.cassandra)
        self.tracks = TrackStore(self.db, settings.cassandra.keyspace)
        self.objects = ObjectStore(settings.s3)
        # One Deezer client for crawling and fetching: its rate limit is the worker's.
        self.deezer = DeezerClient(settings.deezer)
        self.crawler = PlaylistCrawler(settings, self.deezer)
        self.fetcher = AudioFetcher(settings, self.deezer)
        self._extractor: Extractor | None = None
        self._extractor_lock = asyncio.Lock()
        self._ready = asyncio.Event()

    async def on_start(self) -> None:
        """Open every connection before any agent runs."""
        await self.db.start()
        await self.objects.start()
        await self.deezer.start()
        await self.crawler.start()
        await self.fetcher.start()
        self._ready.set()

    async def ready(self) -> None:
        """Wait until every connection is open.

        Faust starts services like this one after the agents, so each agent waits here before
        taking its first event.
        """
        await self._ready.wait()

    async def on_stop(self) -> None:
        """Close in the reverse order."""
        await self.fetcher.stop()
        await self.crawler.stop()
        await self.deezer.stop()
        await self.objects.stop()
        await self.db.stop()

    async def extractor(self) -> Extractor:
        """The configured extractor, loaded (weights checked) on first use."""
        async with self._extractor_lock:
            if self._extractor is None:
                self._extractor = await asyncio.to_thread(load_extractor, self.settings.model)
            return self._extractor


resources = Resources(settings)
# faust types app.service() as taking a class; it accepts an instance as well (and returns it).
app.service(resources)  # type: ignore[arg-type]  # see the comment above
