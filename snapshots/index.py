"""A snapshot loaded for queries: the mmap'ed ANNOY index, the id map and the track rows.

Reads a verified local snapshot folder (``manifest.json``, ``index.ann``, ``tracks.jsonl``);
writes nothing. The index file is mapped read-only, so several processes on one host share its
pages, and a query node swaps snapshots by replacing one reference to a :class:`LoadedSnapshot`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from annoy import AnnoyIndex

from snapshots.errors import SnapshotClosed, SnapshotCorrupt, SnapshotMissing, TrackNotIndexed
from snapshots.local import read_manifest, verify_folder
from snapshots.manifest import INDEX_NAME, METRIC, TRACKS_NAME, Manifest
from snapshots.transform import Transform, to_retrieval_space, transform_from_dict

F32 = npt.NDArray[np.float32]

_WARM_CHUNK = 1 << 20
_WARM_QUERIES = 8


@dataclass(frozen=True)
class TrackInfo:
    """A row of the snapshot: the dense id and the metadata stored with it."""

    row: int
    track_id: str
    name: str | None
    artists: tuple[str, ...]
    album: str | None
    #: ``(tag, score)`` pairs, best first.
    tags: tuple[tuple[str, float], ...]
    #: The recording's ISRC, when its source gave one.
    isrc: str | None = None
    #: sha256 of the audio the vector was extracted from.
    audio_sha256: str | None = None
    #: Where the track sits on the catalogue map (see :mod:`snapshots.projection`); ``None`` in
    #: snapshots built before the map existed.
    xy: tuple[float, float] | None = None


@dataclass(frozen=True)
class Neighbour:
    """A similar track and its cosine similarity to the query track (1.0: same direction)."""

    track: TrackInfo
    score: float

    @property
    def track_id(self) -> str:
        """The neighbour's track id."""
        return self.track.track_id


def cosine_from_angular(distance: float) -> float:
    """Cosine similarity from ANNOY's angular distance ``sqrt(2 - 2 cos)``."""
    return max(-1.0, min(1.0, 1.0 - distance * distance / 2.0))


class LoadedSnapshot:
    """An open snapshot answering neighbour, lookup and paging queries.

    Queries may run in several threads. :meth:`close` may be called while queries run: the
    index is unloaded when the last of them returns, and later queries raise
    :class:`SnapshotClosed`.
    """

    def __init__(
        self, folder: Path, manifest: Manifest, index: Any, rows: tuple[TrackInfo, ...]
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self._index = index
        self._rows = rows
        self._ids = {info.track_id: info.row for info in rows}
        self._tagged: dict[str, tuple[str, ...]] | None = None
        #: How stored vectors were mapped into the indexed space (the manifest's ``transform``).
        self.space: Transform
        try:
            self.space = transform_from_dict(manifest.transform, manifest.dim)
        except ValueError as exc:
            msg = f"snapshot {manifest.version}: bad transform in the manifest: {exc}"
            raise SnapshotCorrupt(msg) from exc
        self._lock = threading.Lock()
        self._active = 0
        self._closed = False

    @classmethod
    def open(cls, folder: Path, *, verify: bool = False) -> LoadedSnapshot:
        """Map a snapshot folder's index and read its rows (blocking; see :func:`load_snapshot`).

        Args:
            folder: A snapshot folder, normally one returned by ``SnapshotStore.download``.
            verify: Check every file's size and sha256 first (download already did).

        Raises:
            SnapshotMissing: A file is absent.
            SnapshotCorrupt: The files disagree with the manifest or with each other.
        """
        manifest = verify_folder(folder) if verify else read_manifest(folder)
        rows = _read_rows(folder / TRACKS_NAME, manifest)
        if not (folder / INDEX_NAME).is_file():
            msg = f"snapshot {manifest.version}: {INDEX_NAME} is missing from {folder}"
            raise SnapshotMissing(msg)
        index = AnnoyIndex(manifest.dim, METRIC)  # the manifest checked its metric is this one
        try:
            # prefault=False: pages are read on first touch (see warm()), so opening is quick.
            index.load(str(folder / INDEX_NAME), prefault=False)
        except OSError as exc:
            msg = f"snapshot {manifest.version}: ANNOY cannot load {INDEX_NAME} ({exc})"
            raise SnapshotCorrupt(msg) from exc
        if index.get_n_items() != manifest.count:
            index.unload()
            msg = (
                f"snapshot {manifest.version}: {INDEX_NAME} holds {index.get_n_items()} items, "
                f"manifest says {manifest.count}"
            )
            raise SnapshotCorrupt(msg)
        try:
            return cls(folder, manifest, index, rows)
        except SnapshotCorrupt:
            index.unload()
            raise

    @property
    def version(self) -> str:
        """The snapshot version."""
        return self.manifest.version

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._ids

    def get(self, track_id: str) -> TrackInfo:
        """The row of a track.

        Raises:
            TrackNotIndexed: The track is not in this snapshot.
        """
        row = self._ids.get(track_id)
        if row is None:
            raise TrackNotIndexed(track_id, self.version)
        return self._rows[row]

    def page(self, offset: int, limit: int) -> list[TrackInfo]:
        """Up to ``limit`` rows starting at row ``offset``, in row (sorted track-id) order."""
        if offset < 0 or limit < 0:
            msg = f"offset and limit must be non-negative, got {offset} and {limit}"
            raise ValueError(msg)
        return list(self._rows[offset : offset + limit])

    def neighbours(self, track_id: str, k: int, search_k: int = -1) -> list[Neighbour]:
        """The ``k`` tracks most similar to ``track_id``, best first, never the track itself.

        Args:
            track_id: The query track.
            k: How many neighbours (fewer when the snapshot is smaller).
            search_k: ANNOY nodes to inspect; -1 lets ANNOY choose (trees x k).

        Raises:
            TrackNotIndexed: The track is not in this snapshot.
            SnapshotClosed: The snapshot was closed.
        """
        if k < 1:
            msg = f"k must be at least 1, got {k}"
            raise ValueError(msg)
        row = self.get(track_id).row
        self._enter()
        try:
            # One extra, because the query item is normally its own nearest neighbour.
            ids, distances = self._index.get_nns_by_item(
                row, min(k + 1, len(self._rows)), search_k, include_distances=True
            )
        finally:
            self._exit()
        # Exclude by row, not by distance 0: an identical vector of another track is a real
        # neighbour, and with duplicates the query row need not come first.
        return [
            Neighbour(self._rows[i], cosine_from_angular(d))
            for i, d in zip(ids, distances, strict=True)
            if i != row
        ][:k]

    def nearest(self, vector: F32, k: int, search_k: int = -1) -> list[Neighbour]:
        """The ``k`` tracks nearest to a vector of the retrieval space, best first.

        Raises:
            SnapshotClosed: The snapshot was closed.
        """
        if k < 1:
            msg = f"k must be at least 1, got {k}"
            raise ValueError(msg)
        self._enter()
        try:
            ids, distances = self._index.get_nns_by_vector(
                np.asarray(vector, dtype=np.float32).tolist(),
                min(k, len(self._rows)),
                search_k,
                include_distances=True,
            )
        finally:
            self._exit()
        return [
            Neighbour(self._rows[i], cosine_from_angular(d))
            for i, d in zip(ids, distances, strict=True)
        ]

    def vector(self, track_id: str) -> F32:
        """A track's vector in the retrieval space, unit-normalised, float32."""
        row = self.get(track_id).row
        self._enter()
        try:
            return _unit(np.asarray(self._index.get_item_vector(row), dtype=np.float32))
        finally:
            self._exit()

    def transform(self, raw_vector: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Map a raw extractor vector into this snapshot's retrieval space, unit-normalised.

        Raises:
            ValueError: The vector is not ``manifest.dim`` finite floats, or has no direction
                in the retrieval space.
        """
        return to_retrieval_space(self.space, raw_vector, self.manifest.dim)

    def tagged(self, tag: str) -> Sequence[str]:
        """Ids of the tracks whose tags include ``tag`` (case-insensitive), in row order."""
        if self._tagged is None:  # built on first use; a snapshot's rows never change
            index: dict[str, list[str]] = {}
            for info in self._rows:
                for name, _ in info.tags:
                    index.setdefault(name.lower(), []).append(info.track_id)
            self._tagged = {name: tuple(ids) for name, ids in index.items()}
        return self._tagged.get(tag.lower(), ())

    def warm(self) -> None:
        """Read the index file once and run a few queries, so the first request is not slow."""
        with (self.folder / INDEX_NAME).open("rb") as handle:
            while handle.read(_WARM_CHUNK):
                pass
        step = max(1, len(self._rows) // _WARM_QUERIES)
        for info in self._rows[::step][:_WARM_QUERIES]:
            self.neighbours(info.track_id, 10)

    def close(self) -> None:
        """Unload the index (at once, or when the queries still running return)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._active == 0:
                self._index.unload()

    def _enter(self) -> None:
        with self._lock:
            if self._closed:
                msg = f"snapshot {self.version} is closed"
                raise SnapshotClosed(msg)
            self._active += 1

    def _exit(self) -> None:
        with self._lock:
            self._active -= 1
            if self._closed and self._active == 0:
                self._index.unload()


async def load_snapshot(folder: Path, *, verify: bool = False, warm: bool = True) -> LoadedSnapshot:
    """Open (and by default warm) a snapshot in a worker thread, off the event loop.

    Raises:
        SnapshotMissing: A file is absent.
        SnapshotCorrupt: The snapshot does not check out; nothing stays loaded.
    """
    snapshot = await asyncio.to_thread(LoadedSnapshot.open, folder, verify=verify)
    if warm:
        try:
            await asyncio.to_thread(snapshot.warm)
        except BaseException:
            snapshot.close()
            raise
    return snapshot


def _unit(vector: F32) -> F32:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


def _read_rows(path: Path, manifest: Manifest) -> tuple[TrackInfo, ...]:
    rows: list[TrackInfo] = []
    try:
        with path.open(encoding="utf-8") as lines:
            for row, line in enumerate(lines):
                data = json.loads(line)
                rows.append(
                    TrackInfo(
                        row=row,
                        track_id=str(data["track_id"]),
                        name=data["name"],
                        artists=tuple(data["artists"]),
                        album=data["album"],
                        tags=tuple((str(t), float(s)) for t, s in data["tags"]),
                        isrc=data.get("isrc"),
                        audio_sha256=data.get("audio_sha256"),
                        xy=_xy(data.get("xy")),
                    )
                )
    except FileNotFoundError as exc:
        msg = f"snapshot {manifest.version}: {TRACKS_NAME} is missing from {path.parent}"
        raise SnapshotMissing(msg) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        msg = f"snapshot {manifest.version}: {TRACKS_NAME} line {len(rows) + 1} is malformed"
        raise SnapshotCorrupt(msg) from exc
    if len(rows) != manifest.count:
        msg = (
            f"snapshot {manifest.version}: {TRACKS_NAME} has {len(rows)} rows, "
            f"manifest says {manifest.count}"
        )
        raise SnapshotCorrupt(msg)
    if len({info.track_id for info in rows}) != len(rows):
        msg = f"snapshot {manifest.version}: {TRACKS_NAME} repeats a track id"
        raise SnapshotCorrupt(msg)
    return tuple(rows)


def _xy(value: Any) -> tuple[float, float] | None:
    """A map position as stored, or ``None`` when the line has none."""
    if value is None:
        return None
    x, y = value  # a malformed pair raises ValueError or TypeError: the line is malformed
    return float(x), float(y)
