"""The explorer's resources on the query node: derived views, Cassandra reads, Deezer, counts.

Reads the settings and the app's snapshot holder and track store; opens a Deezer client (to
resolve previews on demand) and starts the task deriving the search index and map from each
snapshot. Handlers reach them through :data:`face_key`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from api.cassandra import CassandraUnavailable
from api.derived import DerivedViews
from api.keys import cassandra_key, holder_key, settings_key
from api.pipeline_status import PipelineStatus
from sources.deezer import DeezerClient
from stores.track_state import TrackStateReader


@dataclass
class Face:
    """What the explorer's handlers share; filled in by :func:`face_context`."""

    app: web.Application
    views: DerivedViews | None = None
    deezer: DeezerClient | None = None
    status: PipelineStatus | None = None
    _reader: TrackStateReader | None = field(default=None, repr=False)

    async def reader(self) -> TrackStateReader | None:
        """Cassandra reads through the node's connection; ``None`` while it is not open."""
        try:
            store = await self.app[cassandra_key].store()
        except CassandraUnavailable:
            return None
        if self._reader is None or self._reader.db is not store.db:
            self._reader = TrackStateReader(store.db, store.ks)
        return self._reader


face_key = web.AppKey("face", Face)


async def face_context(app: web.Application) -> AsyncIterator[None]:
    """Open the Deezer client and start deriving views; undo both at shutdown."""
    face = app[face_key]
    settings = app[settings_key]
    face.views = DerivedViews(app[holder_key])
    face.status = PipelineStatus(settings, face.reader)
    async with DeezerClient(settings.deezer) as deezer:
        face.deezer = deezer
        await face.views.start()
        try:
            yield
        finally:
            await face.views.stop()


def setup_face(app: web.Application) -> None:
    """Give ``app`` the explorer's state and its cleanup context (before it starts)."""
    app[face_key] = Face(app)
    app.cleanup_ctx.append(face_context)
