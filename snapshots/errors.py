"""The snapshot layer's exceptions, one tree with a ``retriable`` flag on every class.

Reads and writes nothing. The tree::

    SnapshotError                  retriable=False
    ├── NothingToIndex             the model version has no vectors; nothing was built
    ├── SnapshotMissing            retriable=True: no manifest, or a file it lists is absent
    ├── SnapshotCorrupt            a manifest is malformed or a file fails its size/sha256 check
    ├── SnapshotClosed             a query reached a snapshot after close()
    ├── TrackNotIndexed            the track id has no row in the snapshot
    ├── LeaseHeld                  retriable=True: another owner holds the lease
    └── LeaseLost                  retriable=True: our lease expired or was taken over

Callers branch on ``exc.retriable`` rather than on a list of types: a retriable error may go
away by itself (a snapshot being published, a lease expiring), the others will not.
"""

from __future__ import annotations


class SnapshotError(Exception):
    """Base of every error raised by ``snapshots``."""

    retriable: bool = False


class NothingToIndex(SnapshotError):
    """The model version has no vectors, so there is no snapshot to build."""


class SnapshotMissing(SnapshotError):
    """A snapshot's manifest or one of its files is not (or no longer) in the object store."""

    retriable = True


class SnapshotCorrupt(SnapshotError):
    """A manifest does not validate, or a file's size or sha256 differs from its manifest."""


class SnapshotClosed(SnapshotError):
    """The snapshot was closed (its index unloaded) before this query."""


class TrackNotIndexed(SnapshotError, KeyError):
    """The track id is not in this snapshot (unknown, or written after the build)."""

    def __init__(self, track_id: str, version: str) -> None:
        super().__init__(f"track {track_id!r} is not in snapshot {version}")
        self.track_id = track_id
        self.version = version

    def __str__(self) -> str:
        # KeyError's __str__ quotes its argument; keep the plain message.
        return str(self.args[0])


class LeaseHeld(SnapshotError):
    """Another owner holds the lease; it frees up when released or after its TTL."""

    retriable = True

    def __init__(self, name: str, holder: str | None, ttl_s: int) -> None:
        super().__init__(
            f"lease {name!r} is held by {holder or 'an unknown owner'}; it is free again once "
            f"released or at most {ttl_s} s after its last renewal"
        )
        self.name = name
        self.holder = holder


class LeaseLost(SnapshotError):
    """Our lease expired or passed to another owner while we held it."""

    retriable = True
