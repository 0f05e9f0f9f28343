"""What the query node derives from each snapshot it serves: the search index and the map sample.

Reads the search postings the snapshot stores (mapped: opening them decodes nothing), the fresh
tracks, and an even sample of rows for the map; a snapshot without stored postings has its rows
read through ``page`` instead. Writes nothing. A background task notices when a new snapshot is
swapped in and builds its derived views in a worker thread, off the event loop; requests use the
newest views built, which may lag the snapshot by the build time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from api.background import cancel_and_wait
from api.search import Match, SearchIndex
from api.snapshots import SnapshotHolder
from snapshots.index import TrackInfo
from snapshots.serving import ServingView

logger = logging.getLogger(__name__)

#: Most map points kept per snapshot (an even sample of the rows).
MAP_POINTS = 20_000
#: Rows read from the snapshot at a time.
_CHUNK = 10_000
#: How often the task looks for a new snapshot, in seconds.
POLL_S = 0.25


@dataclass(frozen=True)
class MapPoint:
    """One track on the catalogue map."""

    track_id: str
    name: str | None
    x: float
    y: float


@dataclass(frozen=True)
class SnapshotViews:
    """The views derived from one snapshot."""

    version: str
    search: SearchIndex | MergedSearch
    #: An even sample of the tracks that have a map position, in row order.
    map_points: tuple[MapPoint, ...]
    build_s: float


class MergedSearch:
    """A snapshot's stored index and an index of the fresh tracks, searched as one."""

    def __init__(self, stored: SearchIndex, fresh: SearchIndex) -> None:
        self.stored = stored
        self.fresh = fresh

    def __len__(self) -> int:
        return len(self.stored) + len(self.fresh)

    def search(self, query: str, limit: int) -> list[Match]:
        """The ``limit`` best of both indexes' answers, best first (the snapshot's on ties)."""
        found = self.stored.search(query, limit) + self.fresh.search(query, limit)
        return sorted(found, key=lambda match: -match.score)[:limit]


def _rows(snapshot: ServingView) -> Iterator[TrackInfo]:
    for offset in range(0, len(snapshot), _CHUNK):
        yield from snapshot.page(offset, _CHUNK)


def search_index(snapshot: ServingView) -> SearchIndex | MergedSearch:
    """The search index of the snapshot's stored postings and the current fresh tracks.

    A snapshot built before postings were stored has every row decoded and indexed here.
    """
    stored = SearchIndex.stored(snapshot.folder, snapshot.snapshot.track_ids())
    if stored is None:
        return SearchIndex.build(_rows(snapshot))
    fresh = snapshot.fresh.state.infos
    return MergedSearch(stored, SearchIndex.build(fresh)) if len(fresh) else stored


def derive(snapshot: ServingView, *, map_points: int = MAP_POINTS) -> SnapshotViews:
    """Build the views of ``snapshot`` (blocking: run it in a thread)."""
    started = time.perf_counter()
    search = search_index(snapshot)
    step = max(1, -(-len(snapshot) // map_points))
    points = tuple(
        MapPoint(info.track_id, info.name, info.xy[0], info.xy[1])
        for offset in range(0, len(snapshot), step)
        for info in snapshot.page(offset, 1)
        if info.xy is not None
    )
    return SnapshotViews(snapshot.manifest.version, search, points, time.perf_counter() - started)


class DerivedViews:
    """The newest views built, and the task that builds them as snapshots are swapped in."""

    def __init__(self, holder: SnapshotHolder) -> None:
        self.holder = holder
        self.current: SnapshotViews | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start following the holder's snapshot."""
        self._task = asyncio.create_task(self._follow(), name="derived-views")

    async def stop(self) -> None:
        """Stop following; cancel, then await the task."""
        await cancel_and_wait(self._task)

    async def _follow(self) -> None:
        built_for: ServingView | None = None
        while True:
            snapshot = self.holder.current
            if snapshot is not None and snapshot is not built_for:
                built_for = snapshot
                try:
                    views = await asyncio.to_thread(derive, snapshot)
                except Exception:  # a bad row must not stop the node from deriving later ones
                    logger.exception("cannot derive views of snapshot %s", snapshot.version)
                else:
                    self.current = views
                    logger.info(
                        "search index and map of snapshot %s ready: %d tracks in %.2f s",
                        views.version,
                        len(views.search),
                        views.build_s,
                    )
            await asyncio.sleep(POLL_S)
