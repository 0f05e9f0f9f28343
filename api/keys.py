"""Typed keys of the query node's application state."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from api.cassandra import CassandraConnector
from api.fresh import FreshFollower
from api.snapshots import SnapshotFollower, SnapshotHolder
from config.settings import Settings

settings_key = web.AppKey("settings", Settings)
cassandra_key = web.AppKey("cassandra", CassandraConnector)
holder_key = web.AppKey("snapshot_holder", SnapshotHolder)
follower_key = web.AppKey("snapshot_follower", SnapshotFollower)
fresh_key = web.AppKey("fresh_follower", FreshFollower)
#: Threads that run searches off the event loop (ANNOY and numpy release the GIL).
queries_key = web.AppKey("query_threads", ThreadPoolExecutor)
