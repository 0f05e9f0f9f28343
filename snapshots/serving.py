"""What request handlers read: the served snapshot merged with the fresh segment.

Reads a :class:`LoadedSnapshot` and the current :class:`FreshState`; writes nothing. Implements
the query node's read interface (``get``, ``in``, ``len``, ``manifest``, ``neighbours``,
``nearest``, ``vector``, ``transform``, ``tagged``, ``page``): every answer merges the
snapshot's neighbours and the fresh tracks' by exact cosine score, so a track extracted a moment
ago is both queryable and returned as a neighbour before the next snapshot.

Cheap queries (a stored list and a small fresh segment) answer on the calling thread; the
others (:meth:`ServingView.is_cheap` is false) belong in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snapshots.errors import TrackNotIndexed
from snapshots.fresh import FRESH_ROW_BASE, FreshSegment, FreshState
from snapshots.index import F32, LoadedSnapshot, Neighbour, TrackInfo, forget_older_half, unit
from snapshots.manifest import Manifest

#: Up to this many fresh tracks, scoring all of them is cheap enough for the event loop.
CHEAP_FRESH = 20_000

#: Encoded rows kept per view: about 200 bytes each, so at most about 50 MB.
JSON_CACHE = 262_144

#: A neighbour before decoding: a snapshot row or a fresh track's info, and its score.
Scored = tuple[int | TrackInfo, float]


class ServingView:
    """The snapshot and the fresh segment, answering as one catalogue.

    The snapshot is fixed for the view's life; the fresh segment's state is read once per
    query, so a query sees one consistent segment while the consumer keeps adding.
    """

    def __init__(self, snapshot: LoadedSnapshot, fresh: FreshSegment) -> None:
        self.snapshot = snapshot
        self.fresh = fresh
        self._json: dict[int, bytes] = {}

    def track_json(self, track: TrackInfo, encode: Callable[[], str]) -> bytes:
        """A track's public JSON, ``encode()``-d once per snapshot row (fresh rows each time).

        The rows of a snapshot never change, so handlers that return the same tracks again
        and again (popular seeds) encode each one once; the cache is bounded like the rows'.
        """
        if track.row >= FRESH_ROW_BASE or track.row >= len(self.snapshot):
            return encode().encode()
        found = self._json.get(track.row)
        if found is None:
            if len(self._json) >= JSON_CACHE:
                forget_older_half(self._json)
            found = self._json[track.row] = encode().encode()
        return found

    @property
    def manifest(self) -> Manifest:
        """The snapshot's manifest (``version``, ``model_version``, ``count``, ``recall`` ...)."""
        return self.snapshot.manifest

    @property
    def version(self) -> str:
        """The snapshot version."""
        return self.snapshot.version

    @property
    def folder(self) -> Path:
        """The snapshot's local folder."""
        return self.snapshot.folder

    def __len__(self) -> int:
        return len(self.snapshot) + len(self.fresh.state)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self.snapshot or track_id in self.fresh.state.rows

    def get(self, track_id: str) -> TrackInfo:
        """A track's metadata, from the snapshot or the fresh segment.

        Raises:
            TrackNotIndexed: Neither holds it.
        """
        row = self.snapshot.row_of(track_id)
        if row is not None:
            return self.snapshot.info(row)
        state = self.fresh.state
        fresh = state.rows.get(track_id)
        if fresh is None:
            raise TrackNotIndexed(track_id, self.version)
        return state.infos[fresh]

    def page(self, offset: int, limit: int) -> list[TrackInfo]:
        """Rows of the snapshot in order, then the fresh tracks."""
        found = self.snapshot.page(offset, limit)
        if len(found) < limit:
            start = max(0, offset - len(self.snapshot))
            found.extend(self.fresh.state.infos[start : start + limit - len(found)])
        return found

    def is_cheap(self, track_id: str, k: int, tag: str | None = None) -> bool:
        """Whether ``neighbours``/``with_tag`` for this query is a few lookups (loop-safe)."""
        if len(self.fresh.state) > CHEAP_FRESH or track_id not in self.snapshot:
            return False
        return tag is None and k <= self.snapshot.width and self.snapshot.lists_meet_target

    def neighbours(self, track_id: str, k: int, search_k: int | None = None) -> list[Neighbour]:
        """The ``k`` tracks most similar to ``track_id``, best first, never the track itself.

        Raises:
            TrackNotIndexed: Neither the snapshot nor the fresh segment holds the track.
        """
        return self.decode(self.scored(track_id, k, search_k=search_k))

    def with_tag(self, track_id: str, k: int, tag: str) -> list[Neighbour]:
        """The ``k`` most similar tracks carrying ``tag`` (bounded: see ``LoadedSnapshot``)."""
        return self.decode(self.scored(track_id, k, tag=tag))

    def scored(
        self, track_id: str, k: int, *, tag: str | None = None, search_k: int | None = None
    ) -> list[Scored]:
        """:meth:`neighbours` (or :meth:`with_tag`) undecoded: snapshot rows or fresh infos.

        Raises:
            TrackNotIndexed: Neither the snapshot nor the fresh segment holds the track.
        """
        state = self.fresh.state
        row = self.snapshot.row_of(track_id)
        if row is not None:
            query = self.snapshot.row_vector(row)
            if tag is None:
                pairs = self.snapshot.row_neighbour_rows(row, k, search_k)
            else:
                pairs = self.snapshot.tagged_neighbour_rows(track_id, k, tag)
        else:
            query = self._fresh_vector(state, track_id)
            if tag is None:
                pairs = self.snapshot.nearest_rows(query, k, search_k)
            else:
                pairs = self.snapshot.subset_rows(query, self.snapshot.tagged_rows(tag), k)
        if not len(state):
            return list(pairs[:k])
        return merge_by_score(pairs, state.search(query, k, exclude=track_id, tag=tag), k)

    def decode(self, scored: list[Scored]) -> list[Neighbour]:
        """Neighbours with their metadata decoded."""
        return [
            Neighbour(item if isinstance(item, TrackInfo) else self.snapshot.info(item), score)
            for item, score in scored
        ]

    def nearest(self, vector: Any, k: int, search_k: int | None = None) -> list[Neighbour]:
        """The ``k`` tracks nearest a retrieval-space vector, best first, scored exactly."""
        query = unit(vector)
        pairs = self.snapshot.nearest_rows(query, k, search_k)
        return self.decode(merge_by_score(pairs, self.fresh.state.search(query, k), k))

    def vector(self, track_id: str) -> F32:
        """The track's retrieval-space vector (unit length, float32)."""
        # One lookup of the id: the engine asks this for every candidate it reads.
        row = self.snapshot.row_of(track_id)
        if row is not None:
            return np.array(self.snapshot.row_vector(row), dtype=np.float32)
        return self._fresh_vector(self.fresh.state, track_id).copy()

    def transform(self, raw: Any) -> F32:
        """Map a raw extractor vector into the retrieval space (unit length)."""
        return self.snapshot.transform(raw)

    def tagged(self, tag: str) -> Sequence[str]:
        """Ids of the tracks whose top tags include ``tag``: the snapshot's, then fresh ones."""
        fresh = self.fresh.state.tagged(tag)
        listed = self.snapshot.tagged(tag)
        return listed if not fresh else [*listed, *fresh]

    def _fresh_vector(self, state: FreshState, track_id: str) -> F32:
        fresh = state.rows.get(track_id)
        if fresh is None:
            raise TrackNotIndexed(track_id, self.version)
        vector: F32 = state.vectors[fresh]
        return vector


def merge_by_score(
    pairs: list[tuple[int, float]], fresh: list[tuple[TrackInfo, float]], k: int
) -> list[Scored]:
    """The best ``k`` of snapshot rows and fresh tracks, both given best first."""
    # Both lists are best first and disjoint (the segment holds no snapshot track).
    merged: list[Scored] = []
    i = j = 0
    while len(merged) < k and (i < len(pairs) or j < len(fresh)):
        if j >= len(fresh) or (i < len(pairs) and pairs[i][1] >= fresh[j][1]):
            merged.append(pairs[i])
            i += 1
        else:
            merged.append(fresh[j])
            j += 1
    return merged
