"""The query node's app factory: every resource opens in its own cleanup context.

Reads the settings; opens the object store and the snapshot follower, which loads the newest
snapshot and then follows ``index-updated.v1``, the fresh follower, which feeds
``features-extracted.v1`` into the fresh segment, the threads that run searches off the event
loop, and starts connecting to Cassandra (tracks without audio and the names of fresh tracks are
read from it) in the background. Neither a missing Cassandra nor an unreachable Kafka or object
store keeps the node from starting: it serves what it has and keeps trying, and ``/readyz`` says
how that goes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from api.audio_query import AudioQueries, audio_queries_key
from api.blas import blas_threads
from api.cassandra import CassandraConnector
from api.errors import json_errors
from api.face import setup_face
from api.fresh import Describe, FreshFollower, Names
from api.keys import cassandra_key, follower_key, fresh_key, holder_key, queries_key, settings_key
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
        fresh = FreshFollower(settings, app[holder_key], _describer(app))
        if settings.api.fresh:
            await fresh.start()
        app[fresh_key] = fresh
        yield
        await fresh.stop()
        await follower.stop()
        app[holder_key].close()


def _describer(app: web.Application) -> Describe:
    async def describe(track_ids: Sequence[str]) -> Names:
        rows = await (await app[cassandra_key].store()).rows(track_ids)
        return {r.track_id: (r.name, tuple(r.artists), r.album) for r in rows}

    return describe


async def _query_threads(app: web.Application) -> AsyncIterator[None]:
    pool = ThreadPoolExecutor(app[settings_key].api.query_threads, "query")
    app[queries_key] = pool
    yield
    pool.shutdown(wait=True, cancel_futures=True)


def create_app(settings: Settings) -> web.Application:
    """The query node application."""
    app = web.Application(middlewares=[measure_requests, json_errors])
    app[settings_key] = settings
    app[holder_key] = SnapshotHolder(settings.api.fresh_limit)
    app[audio_queries_key] = AudioQueries(settings)  # loads a model only on the first query
    app.cleanup_ctx.append(blas_threads)
    app.cleanup_ctx.append(_query_threads)
    app.cleanup_ctx.append(_cassandra)
    app.cleanup_ctx.append(_snapshots)
    setup_face(app)
    setup_metrics(app)
    setup_routes(app)
    return app
