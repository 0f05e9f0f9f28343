"""The query node's app factory: every resource opens in its own cleanup context.

Reads the settings; opens a Cassandra session (for tracks without audio and the names of fresh
tracks), the object store, the snapshot follower, which loads the newest snapshot and then
follows ``index-updated.v1``, the fresh follower, which feeds ``features-extracted.v1`` into the
fresh segment, and the threads that run searches off the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from api.errors import json_errors
from api.fresh import Describe, FreshFollower, Names
from api.keys import follower_key, fresh_key, holder_key, queries_key, settings_key, tracks_key
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
        store = app.get(tracks_key)
        if store is None:
            return {}
        rows = await store.rows(track_ids)
        return {r.track_id: (r.name, tuple(r.artists), r.album) for r in rows}

    return describe


async def _query_threads(app: web.Application) -> AsyncIterator[None]:
    pool = ThreadPoolExecutor(app[settings_key].api.query_threads, "query")
    app[queries_key] = pool
    yield
    pool.shutdown(wait=True, cancel_futures=True)


def create_app(settings: Settings) -> web.Application:
    """The query node application."""
    app = web.Application(middlewares=[json_errors])
    app[settings_key] = settings
    app[holder_key] = SnapshotHolder(settings.api.fresh_limit)
    app.cleanup_ctx.append(_query_threads)
    app.cleanup_ctx.append(_cassandra)
    app.cleanup_ctx.append(_snapshots)
    setup_routes(app)
    return app
