"""The query node's app factory: every resource opens in its own cleanup context.

Reads the settings; opens the object store and the snapshot follower, which loads the newest
snapshot and then follows ``index-updated.v1``, and starts connecting to Cassandra (only tracks
without audio are read from it) in the background. Neither a missing Cassandra nor an
unreachable Kafka or object store keeps the node from starting: it serves what it has and keeps
trying, and ``/readyz`` says how that goes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from api.audio_query import AudioQueries, audio_queries_key
from api.cassandra import CassandraConnector
from api.errors import json_errors
from api.face import setup_face
from api.keys import cassandra_key, follower_key, holder_key, settings_key
from api.metrics import measure_requests, setup_metrics
from api.routes import setup_routes
from api.snapshots import SnapshotFollower, SnapshotHolder
from config.settings import Settings
from stores.objects import ObjectStore


async def _cassandra(app: web.Application) -> AsyncIterator[None]:
    connector = CassandraConnector(app[settings_key])
    connector.start()
    app[cassandra_key] = connector
    yield
    await connector.stop()


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
    app = web.Application(middlewares=[measure_requests, json_errors])
    app[settings_key] = settings
    app[holder_key] = SnapshotHolder()
    app[audio_queries_key] = AudioQueries(settings)  # loads a model only on the first query
    app.cleanup_ctx.append(_cassandra)
    app.cleanup_ctx.append(_snapshots)
    setup_face(app)
    setup_metrics(app)
    setup_routes(app)
    return app
