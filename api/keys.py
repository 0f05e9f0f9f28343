"""Typed keys of the query node's application state."""

from __future__ import annotations

from aiohttp import web

from api.snapshots import SnapshotFollower, SnapshotHolder
from config.settings import Settings
from stores.tracks import TrackStore

settings_key = web.AppKey("settings", Settings)
tracks_key = web.AppKey("tracks", TrackStore)
holder_key = web.AppKey("snapshot_holder", SnapshotHolder)
follower_key = web.AppKey("snapshot_follower", SnapshotFollower)
