"""Typed keys of the query node's application state."""

from __future__ import annotations

from aiohttp import web

from api.cassandra import CassandraConnector
from api.snapshots import SnapshotFollower, SnapshotHolder
from config.settings import Settings

settings_key = web.AppKey("settings", Settings)
cassandra_key = web.AppKey("cassandra", CassandraConnector)
holder_key = web.AppKey("snapshot_holder", SnapshotHolder)
follower_key = web.AppKey("snapshot_follower", SnapshotFollower)
