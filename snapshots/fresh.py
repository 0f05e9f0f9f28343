"""The fresh segment: tracks extracted after the served snapshot was built, searched exactly.

Reads and writes nothing itself: the query node feeds it ``features-extracted`` vectors (see
``api/fresh.py``). Vectors are kept raw and, mapped into the served snapshot's retrieval space,
in one float32 array scored by a matrix-vector product: a few thousand tracks cost well under a
millisecond. A track leaves the segment when a snapshot containing it is swapped in
(:meth:`FreshSegment.rebase`).

One writer (the event loop) and any number of reading threads: every change publishes a new
immutable :class:`FreshState`, and readers take the current one once per query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from snapshots.index import F32, TrackInfo

#: Fresh rows are numbered from here in :class:`TrackInfo.row`, apart from snapshot rows.
FRESH_ROW_BASE = 1 << 40


@dataclass(frozen=True)
class FreshTrack:
    """A track seen on ``features-extracted`` and not yet in the served snapshot."""

    track_id: str
    model_version: str
    raw: F32
    tags: tuple[tuple[str, float], ...]
    name: str | None = None
    artists: tuple[str, ...] = ()
    album: str | None = None


@dataclass(frozen=True)
class FreshState:
    """An immutable view of the segment: ids, infos and retrieval-space vectors by row."""

    ids: tuple[str, ...] = ()
    infos: tuple[TrackInfo, ...] = ()
    vectors: F32 = field(default_factory=lambda: np.empty((0, 0), dtype=np.float32))
    rows: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def search(
        self, query: F32, k: int, *, exclude: str | None = None, tag: str | None = None
    ) -> list[tuple[TrackInfo, float]]:
        """The ``k`` best fresh tracks for a unit retrieval-space vector, best first."""
        if not self.ids:
            return []
        scores = self.vectors @ query
        order = np.argsort(-scores, kind="stable")
        found: list[tuple[TrackInfo, float]] = []
        for i in order:
            info = self.infos[i]
            if info.track_id == exclude:
                continue
            if tag is not None and not _carries(info, tag):
                continue
            found.append((info, float(scores[i])))
            if len(found) == k:
                break
        return found

    def tagged(self, tag: str) -> list[str]:
        """Ids of the fresh tracks carrying ``tag``."""
        return [info.track_id for info in self.infos if _carries(info, tag)]


def _carries(info: TrackInfo, tag: str) -> bool:
    wanted = tag.lower()
    return any(name.lower() == wanted for name, _ in info.tags)


class FreshSegment:
    """Tracks newer than the served snapshot, by track id, for one model version at a time.

    Args:
        to_space: Maps a raw vector into the served snapshot's retrieval space (unit length).
        model_version: The served snapshot's model version; other versions' vectors are kept
            raw (a later snapshot may be of their version) but not searched.
        limit: Most tracks kept; beyond, the oldest are dropped (a snapshot is overdue).
    """

    def __init__(
        self, to_space: Callable[[F32], F32] | None, model_version: str | None, limit: int
    ) -> None:
        self._to_space = to_space
        self.model_version = model_version
        self.limit = limit
        self._tracks: dict[str, FreshTrack] = {}
        #: Retrieval-space vectors of the tracks of ``model_version``, mapped once each.
        self._space: dict[str, F32] = {}
        self.state = FreshState()

    def __len__(self) -> int:
        return len(self.state)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self.state.rows

    def add(self, tracks: Iterable[FreshTrack], known: Callable[[str], bool]) -> int:
        """Add tracks the served snapshot does not hold (``known``); returns how many were new."""
        added = 0
        for track in tracks:
            if known(track.track_id):
                continue
            key = f"{track.model_version}\0{track.track_id}"
            if key not in self._tracks:
                added += 1
            self._tracks.pop(key, None)  # re-inserted last: the newest is dropped last
            self._tracks[key] = track
            self._space.pop(key, None)
            if self._to_space is not None and track.model_version == self.model_version:
                try:
                    self._space[key] = self._to_space(track.raw)
                except ValueError:  # no direction in the retrieval space: nothing to compare
                    del self._tracks[key]
                    added -= 1
        while len(self._tracks) > self.limit:
            oldest = next(iter(self._tracks))
            del self._tracks[oldest]
            self._space.pop(oldest, None)
        self._publish()
        return added

    def rebase(
        self,
        to_space: Callable[[F32], F32],
        model_version: str,
        known: Callable[[str], bool],
    ) -> int:
        """Follow a newly served snapshot: drop what it holds, map the rest into its space.

        Returns:
            How many tracks left the segment.
        """
        before = len(self._tracks)
        self._to_space = to_space
        self.model_version = model_version
        self._tracks = {
            key: track
            for key, track in self._tracks.items()
            if not (track.model_version == model_version and known(track.track_id))
        }
        self._space = {}
        for key, track in list(self._tracks.items()):
            if track.model_version == model_version:
                try:
                    self._space[key] = to_space(track.raw)
                except ValueError:  # another length, or no direction in this space
                    del self._tracks[key]
        self._publish()
        return before - len(self._tracks)

    def _publish(self) -> None:
        if self._to_space is None:
            self.state = FreshState()
            return
        keys = [key for key in self._tracks if key in self._space]
        mine = [self._tracks[key] for key in keys]
        infos = tuple(
            TrackInfo(
                row=FRESH_ROW_BASE + i,
                track_id=t.track_id,
                name=t.name,
                artists=t.artists,
                album=t.album,
                tags=t.tags,
            )
            for i, t in enumerate(mine)
        )
        vectors: npt.NDArray[np.float32]
        if mine:
            vectors = np.stack([self._space[key] for key in keys]).astype(np.float32)
        else:
            vectors = np.empty((0, 0), dtype=np.float32)
        self.state = FreshState(
            ids=tuple(t.track_id for t in mine),
            infos=infos,
            vectors=vectors,
            rows={t.track_id: i for i, t in enumerate(mine)},
        )
