"""What the query node derives from each snapshot it serves: the search index and the map sample.

Reads the serving snapshot's rows (through ``page``); writes nothing. A background task notices
when a new snapshot is swapped in and builds its derived views in a worker thread, off the event
loop; requests use the newest views built, which may lag the snapshot by the build time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from api.search import SearchIndex
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
    search: SearchIndex
    #: An even sample of the tracks that have a map position, in row order.
    map_points: tuple[MapPoint, ...]
    build_s: float


def _rows(snapshot: ServingView) -> Iterator[TrackInfo]:
    for offset in range(0, len(snapshot), _CHUNK):
        yield from snapshot.page(offset, _CHUNK)


def derive(snapshot: ServingView, *, map_points: int = MAP_POINTS) -> SnapshotViews:
    """Build the views of ``snapshot`` (blocking: run it in a thread)."""
    started = time.perf_counter()
    search = SearchIndex.build(_rows(snapshot))
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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

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
