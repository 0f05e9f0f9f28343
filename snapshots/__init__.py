"""The snapshot layer: build, publish, find, download, verify and query ANNOY snapshots.

Reads Cassandra (vectors, metadata, change marks, leases) and the object store; writes snapshot
folders locally and under ``snapshots/`` in the bucket. See each module for its part.
"""

from __future__ import annotations

from snapshots.builder import (
    BuiltSnapshot,
    TrackVector,
    build_snapshot,
    current_mark,
    vectors_changed_since,
    write_snapshot,
)
from snapshots.errors import (
    LeaseHeld,
    LeaseLost,
    NothingToIndex,
    SnapshotClosed,
    SnapshotCorrupt,
    SnapshotError,
    SnapshotMissing,
    TrackNotIndexed,
)
from snapshots.index import LoadedSnapshot, Neighbour, TrackInfo, load_snapshot
from snapshots.lease import Lease
from snapshots.local import prune_local, verify_folder
from snapshots.manifest import FileEntry, Manifest
from snapshots.store import SnapshotStore, download, to_serve

__all__ = [
    "BuiltSnapshot",
    "FileEntry",
    "Lease",
    "LeaseHeld",
    "LeaseLost",
    "LoadedSnapshot",
    "Manifest",
    "Neighbour",
    "NothingToIndex",
    "SnapshotClosed",
    "SnapshotCorrupt",
    "SnapshotError",
    "SnapshotMissing",
    "SnapshotStore",
    "TrackInfo",
    "TrackNotIndexed",
    "TrackVector",
    "build_snapshot",
    "current_mark",
    "download",
    "to_serve",
    "load_snapshot",
    "prune_local",
    "vectors_changed_since",
    "verify_folder",
    "write_snapshot",
]
