"""The query node's app factory: every resource opens in its own cleanup context.

Reads the settings; opens a Cassandra session (for tracks without audio), the object store and
the snapshot follower, which loads the newest snapshot and then follows ``index-updated.v1``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from api.audio_query import AudioQueries, audio_queries_key
from api.errors import json_errors
from api.keys import follower_key, holder_key, settings_key, tracks_key
from api.routes import setup_routes
from api.snapshots import SnapshotFollower, SnapshotHolder
from config.settings import Settings
from stores.cassandra import CassandraSession
from stores.objects import ObjectStore
from stores.tracks import TrackStore


async def _cassandra(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    session = CassandraSession(settings.cassandra)
    await session.start()
    app[tracks_key] = TrackStore(session, settings.cassandra.keyspace)
    yield
    await session.stop()


async def _snapshots(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    async with ObjectStore(settings.s3) as objects:
        follower = SnapshotFollower(settings, objects, app[holder_key])
        await follower.start()
        app[follower_key] = follower
        yield
        await follower.stop()
        app[holder_key].close()


def create_app(settings: Settings) -> web.Application:
    """The query node application."""
    app = web.Application(middlewares=[json_errors])
    app[settings_key] = settings
    app[holder_key] = SnapshotHolder()
    app[audio_queries_key] = AudioQueries(settings)  # loads a model only on the first query
    app.cleanup_ctx.append(_cassandra)
    app.cleanup_ctx.append(_snapshots)
    setup_routes(app)
    return app
