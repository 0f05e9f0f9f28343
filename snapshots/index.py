"""A snapshot loaded for queries: memory-mapped index, vectors, lists, ids and metadata.

Reads a verified local snapshot folder (the files of :data:`snapshots.manifest.DATA_FILES`);
writes nothing. Every file is mapped read-only, so opening is quick whatever the size, several
processes on one host share the pages, and a track's metadata is decoded only when it is
returned. A query node swaps snapshots by replacing one reference to a :class:`LoadedSnapshot`;
the old one is unloaded when the last request holding it lets go.

Queries by track id read the row's stored neighbour list (O(k)), unless the lists missed the
recall target (then they are searched like queries by vector); queries by vector search the
ANNOY index with the ``search_k`` the builder tuned, and re-rank its candidates exactly. With a
tag, the stored list answers when enough of it carries the tag, otherwise the tracks carrying
the tag are scored exactly (never a whole-catalogue search).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import mmap
import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, overload

import numpy as np
import numpy.typing as npt
from annoy import AnnoyIndex

from snapshots.errors import SnapshotClosed, SnapshotCorrupt, SnapshotMissing, TrackNotIndexed
from snapshots.local import read_manifest, verify_folder
from snapshots.manifest import (
    IDS_NAME,
    INDEX_NAME,
    METRIC,
    NEIGHBOURS_NAME,
    OFFSETS_NAME,
    SCORES_NAME,
    TAG_CELL_FILES,
    TAGGED_NAME,
    TAGS_NAME,
    TRACKS_NAME,
    VECTORS_NAME,
    XY_NAME,
    Manifest,
)
from snapshots.tag_cells import TagCells
from snapshots.tag_query import WHOLE_TAG_ROWS, best_in_cells
from snapshots.transform import Transform, to_retrieval_space, transform_from_dict

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

_WARM_CHUNK = 1 << 20
_WARM_QUERIES = 8
#: Rows scored per block inside a tag's subset: bounds the temporary copy to ~40 MB.
_SUBSET_BLOCK = 65_536
#: Decoded rows kept per snapshot (about 30 MB at most).
INFO_CACHE = 65_536


#: Vectors at least this close (cosine) are one recording. The same bytes give the same vector
#: and a lossless re-encode stays above 0.9999 (measured on the 17 shared clips), while lossy
#: re-encodes drift much further (0.87-0.999) and distinct recordings reached 0.93 even among
#: those 17; a catalogue of millions holds closer distinct pairs, so the vector test is kept
#: strict and lossy copies are left to the ISRC and audio digest tests (see docs/api.md).
COPY_COSINE = 0.999
#: Copies' cosines to any query differ by at most sqrt(2 - 2 * COPY_COSINE) (triangle
#: inequality), so a candidate is compared only with groups scored within this of it.
COPY_WINDOW = float(np.sqrt(2 - 2 * COPY_COSINE)) + 1e-6
#: Stored scores and a query's may differ in the last bits: checks against the two thresholds
#: above keep this margin on the safe side.
SCORE_MARGIN = 1e-5
#: Rows whose plain depth is worked out at once (bounds the temporary arrays to a few MB).
_DEPTH_BLOCK = 8192
#: The keys of a metadata line after the ones a response shows, from the first of them.
_PRIVATE_KEYS = b', "audio_sha256": '
#: Keys of a metadata line as ``track_line`` writes them: keys, never text, since every quote
#: inside a JSON string is escaped.
_TAGS_KEY = b', "tags": '
_ISRC_KEY = b', "isrc": '
#: What a response shows of a track whose line has no ISRC.
_NULL_ISRC = b', "isrc": null'
#: A copy key in a metadata line as ``track_line`` writes it (JSON, values without quotes).
_COPY_KEY = re.compile(rb'"(isrc|audio_sha256)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _mapped(path: Path) -> Any:
    return np.asarray(np.load(path, mmap_mode="r"))


def _flat(array: npt.NDArray[Any], item: Literal["i", "q", "f"]) -> memoryview[Any]:
    """A C-contiguous array's memory as a flat view of ``item``-s (``struct`` codes)."""
    if array.size == 0:
        return memoryview(b"").cast(item)  # a view with a 0 in its shape cannot be cast
    return array.data.cast("B").cast(item)


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
    """A similar track and its cosine similarity to the query (1.0: same direction)."""

    track: TrackInfo
    score: float

    @property
    def track_id(self) -> str:
        """The neighbour's track id."""
        return self.track.track_id


def cosine_from_angular(distance: float) -> float:
    """Cosine similarity from ANNOY's angular distance ``sqrt(2 - 2 cos)``."""
    return max(-1.0, min(1.0, 1.0 - distance * distance / 2.0))


def unit(vector: Any) -> F32:
    """``vector`` as float32, scaled to length 1 (a zero vector stays zero)."""
    out = np.asarray(vector, dtype=np.float32).reshape(-1).copy()
    norm = float(np.linalg.norm(out))
    if norm > 0:
        out /= norm
    return out


class RowIds(Sequence[str]):
    """The track ids of some rows (``rows``) or of every row (``None``), decoded one at a time."""

    def __init__(
        self, ids: npt.NDArray[np.bytes_], rows: npt.NDArray[np.int32] | None = None
    ) -> None:
        self._ids = ids
        self._rows = rows

    def __len__(self) -> int:
        return len(self._ids if self._rows is None else self._rows)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        picked = self._ids[index] if self._rows is None else self._ids[self._rows[index]]
        if isinstance(index, slice):
            return [bytes(i).decode() for i in picked]
        return bytes(picked).decode()


def _unload(index: Any, state: dict[str, bool]) -> None:
    # Runs when the snapshot is collected (or closed): the mapping is released once.
    if not state["unloaded"]:
        state["unloaded"] = True
        index.unload()


class LoadedSnapshot:
    """An open snapshot answering lookups, neighbour, vector, tag and paging queries.

    Queries may run in several threads. :meth:`close` may be called while queries run: the
    index is unloaded when the last of them returns, and later index queries raise
    :class:`SnapshotClosed`. A snapshot nobody references any more is unloaded by the garbage
    collector, which is how a swapped-out snapshot lives exactly as long as requests use it.
    """

    def __init__(self, folder: Path, manifest: Manifest, index: Any) -> None:
        self.folder = folder
        self.manifest = manifest
        self._index = index
        count = manifest.count
        try:
            # Plain array views of the mappings: np.memmap's own indexing is slow Python.
            self._vectors: F32 = _mapped(folder / VECTORS_NAME)
            # Copied into memory (a few bytes a track): every query by id searches it, and
            # a private copy this size gets huge pages, so its search meets few cold pages.
            self._ids: npt.NDArray[np.bytes_] = np.array(_mapped(folder / IDS_NAME))
            self._offsets: I64 = _mapped(folder / OFFSETS_NAME)
            self._lists: npt.NDArray[np.int32] = _mapped(folder / NEIGHBOURS_NAME)
            self._scores: F32 = _mapped(folder / SCORES_NAME)
            self._tagged: npt.NDArray[np.int32] = _mapped(folder / TAGGED_NAME)
            self._xy: F32 = _mapped(folder / XY_NAME)
            spans = json.loads((folder / TAGS_NAME).read_text(encoding="utf-8"))
            self._spans = {str(t): (int(a), int(b)) for t, (a, b) in spans.items()}
            #: Each tag's rows by cell (``None`` in snapshots built before them).
            self.tag_cells: TagCells | None = None
            if set(TAG_CELL_FILES) <= set(manifest.files):
                self.tag_cells = TagCells.open(folder, self._spans)
        except FileNotFoundError as exc:
            msg = f"snapshot {manifest.version}: {Path(exc.filename or '?').name} is missing"
            raise SnapshotMissing(msg) from exc
        except (ValueError, TypeError, AttributeError) as exc:
            msg = f"snapshot {manifest.version}: a data file is malformed ({exc})"
            raise SnapshotCorrupt(msg) from exc
        width = manifest.neighbours
        problems = [
            name
            for name, ok in (
                (VECTORS_NAME, self._vectors.shape == (count, manifest.dim)),
                (IDS_NAME, self._ids.shape == (count,) and self._ids.dtype.kind == "S"),
                (OFFSETS_NAME, self._offsets.shape == (count + 1,)),
                (NEIGHBOURS_NAME, self._lists.shape == (count, width)),
                (SCORES_NAME, self._scores.shape == (count, width)),
                (TAGGED_NAME, self._tagged.ndim == 1),
                (XY_NAME, self._xy.shape == (count, 2)),
            )
            if not ok
        ]
        if problems:
            msg = f"snapshot {manifest.version}: {', '.join(problems)} disagree with the manifest"
            raise SnapshotCorrupt(msg)
        if count > 1 and not bool(np.all(self._ids[1:] > self._ids[:-1])):
            msg = f"snapshot {manifest.version}: {IDS_NAME} is not sorted or repeats an id"
            raise SnapshotCorrupt(msg)
        with (folder / TRACKS_NAME).open("rb") as handle:
            size = handle.seek(0, 2)
            if int(self._offsets[0]) != 0 or int(self._offsets[-1]) != size:
                msg = f"snapshot {manifest.version}: {OFFSETS_NAME} disagrees with {TRACKS_NAME}"
                raise SnapshotCorrupt(msg)
            self._lines = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        #: How stored vectors were mapped into the indexed space (the manifest's ``transform``).
        self.space: Transform
        try:
            self.space = transform_from_dict(manifest.transform, manifest.dim)
        except ValueError as exc:
            msg = f"snapshot {manifest.version}: bad transform in the manifest: {exc}"
            raise SnapshotCorrupt(msg) from exc
        self._infos: dict[int, TrackInfo] = {}
        self._copies: dict[int, frozenset[int]] | None = None
        self._copies_lock = threading.Lock()
        self._alone: npt.NDArray[np.bool_] | None = None
        self._depths: npt.NDArray[np.int32] | None = None
        self._public: I64 | None = None
        recall = manifest.recall or {}
        #: Whether the stored lists reached the recall target on the builder's sample. When
        #: they did not (above 100,000 tracks the builder states the recall its most probes
        #: reach rather than pay n^2 for exact lists), queries by id are searched as queries
        #: by vector are, at the ``search_k`` that met the target, instead of read from the
        #: lists. A snapshot that records no recall is trusted, as before recall was measured.
        self.lists_meet_target = True
        if "lists" in recall and "target" in recall:
            self.lists_meet_target = float(recall["lists"]) >= float(recall["target"])
        # Flat views of the same memory for the commonest query's few reads: indexing one
        # gives a Python number without a numpy call (a few microseconds each in a busy node).
        self._list_items: memoryview[Any] = _flat(self._lists, "i")
        self._score_items: memoryview[Any] = _flat(self._scores, "f")
        self._depth_items: memoryview[Any] | None = None
        self._public_items: memoryview[Any] | None = None
        self._alone_lock = threading.Lock()
        self._lock = threading.Lock()
        self._active = 0
        self._closed = False
        self._state = {"unloaded": False}
        self._finalizer = weakref.finalize(self, _unload, index, self._state)

    @classmethod
    def open(cls, folder: Path, *, verify: bool = False) -> LoadedSnapshot:
        """Map a snapshot folder's files (blocking; see :func:`load_snapshot`).

        Args:
            folder: A snapshot folder, normally one returned by ``SnapshotStore.download``.
            verify: Check every file's size and sha256 first (download already did).

        Raises:
            SnapshotMissing: A file is absent.
            SnapshotCorrupt: The files disagree with the manifest or with each other.
        """
        manifest = verify_folder(folder) if verify else read_manifest(folder)
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
            return cls(folder, manifest, index)
        except (SnapshotCorrupt, SnapshotMissing):
            index.unload()
            raise

    @property
    def version(self) -> str:
        """The snapshot version."""
        return self.manifest.version

    @property
    def width(self) -> int:
        """Length of the stored neighbour lists: ``neighbours(id, k)`` is O(k) up to it."""
        return self.manifest.neighbours

    def __len__(self) -> int:
        return self.manifest.count

    def __contains__(self, track_id: object) -> bool:
        return isinstance(track_id, str) and self.row_of(track_id) is not None

    def row_of(self, track_id: str) -> int | None:
        """The row of a track, or ``None`` (a binary search over the sorted ids)."""
        key = track_id.encode()
        if not key or len(key) > self._ids.dtype.itemsize:
            return None
        # A key no longer than the ids is cast to their dtype, not the whole array to its.
        row = int(self._ids.searchsorted(key))
        if row < len(self._ids) and self._ids[row] == key:
            return row
        return None

    def info(self, row: int) -> TrackInfo:
        """The metadata of a row, decoded from its line (recently used rows are kept)."""
        found = self._infos.get(row)
        if found is not None:
            return found
        start, end = self._offsets[row : row + 2].tolist()
        data = json.loads(self._lines[start:end])
        x, y = self._xy[row].tolist()
        found = TrackInfo(
            row,
            data["track_id"],
            data["name"],
            tuple(data["artists"]),
            data["album"],
            tuple([(t, float(s)) for t, s in data["tags"]]),
            data.get("isrc"),
            data.get("audio_sha256"),
            (x, y),
        )
        if len(self._infos) >= INFO_CACHE:
            forget_older_half(self._infos)
        self._infos[row] = found
        return found

    def line(self, row: int) -> bytes:
        """A row's metadata as stored, undecoded: one JSON object.

        Its keys are ``track_id``, ``name``, ``artists``, ``album`` and ``tags``.
        """
        start, end = self._offsets[row : row + 2].tolist()
        return bytes(self._lines[start : end - 1])  # without the newline

    def public_pieces(
        self, rows: Sequence[int], tails: Sequence[bytes] | None = None
    ) -> list[bytes] | None:
        """Rows' metadata as a response shows a track, undecoded, as pieces of bytes to join.

        A row's pieces make its JSON object without the closing brace, and ``tails[i]`` (when
        given) follows row ``i``'s: the caller's fields. The object's keys are ``track_id``,
        ``name``, ``artists``, ``album``, ``isrc`` and ``tags``: a line as the builder writes it,
        with ``"isrc": null`` where it is unknown and cut before the keys a response does not
        show (see :meth:`public_spans`). ``None`` when a row's line cannot be sent this way.
        """
        if self._public_items is None:
            self._public_items = _flat(self.public_spans(), "q")
        spans = self._public_items
        lines = self._lines
        found: list[bytes] = []
        for i, row in enumerate(rows):
            start, split, cut = spans[3 * row : 3 * row + 3].tolist()
            if cut < 0:
                return None
            if split == cut:
                found.append(lines[start:cut])
            else:
                found += (lines[start:split], _NULL_ISRC, lines[split:cut])
            if tails is not None:
                found.append(tails[i])
        return found

    def public_spans(self) -> I64:
        """Per row, where its line starts, where its public part is split and where it ends.

        File positions, computed once, by :meth:`warm` (24 bytes a row). A row's public part is
        its line from ``start`` up to ``cut``, before the keys a response does not show; where
        the line has no ISRC, ``"isrc": null`` goes in at ``split``, before the tags (otherwise
        ``split == cut``). ``cut`` is -1 for a line that cannot be sent this way: no tags, or a
        known ISRC after them, as builders wrote lines before responses were sent from them.
        """
        if self._public is None:
            with self._alone_lock:
                if self._public is None:
                    self._public = _public_spans(self._lines, np.asarray(self._offsets))
        return self._public

    def get(self, track_id: str) -> TrackInfo:
        """The row of a track.

        Raises:
            TrackNotIndexed: The track is not in this snapshot.
        """
        return self.info(self._row(track_id))

    def page(self, offset: int, limit: int) -> list[TrackInfo]:
        """Up to ``limit`` rows starting at row ``offset``, in row (sorted track-id) order."""
        if offset < 0 or limit < 0:
            msg = f"offset and limit must be non-negative, got {offset} and {limit}"
            raise ValueError(msg)
        return [self.info(row) for row in range(offset, min(len(self), offset + limit))]

    def neighbours(self, track_id: str, k: int, search_k: int | None = None) -> list[Neighbour]:
        """The ``k`` tracks most similar to ``track_id``, best first, never the track itself.

        Up to :attr:`width` this reads the row's stored list; beyond, it searches by vector.

        Args:
            track_id: The query track.
            k: How many neighbours (fewer when the snapshot is smaller).
            search_k: ANNOY nodes to inspect beyond the stored list (default: the tuned one).

        Raises:
            TrackNotIndexed: The track is not in this snapshot.
            SnapshotClosed: The snapshot was closed (only for a search beyond the list).
        """
        return self._neighbours(self.neighbour_rows(track_id, k, search_k))

    def neighbour_rows(
        self, track_id: str, k: int, search_k: int | None = None
    ) -> list[tuple[int, float]]:
        """:meth:`neighbours` as ``(row, score)`` pairs, nothing decoded."""
        return self.row_neighbour_rows(self._row(track_id), k, search_k)

    def row_neighbour_rows(
        self, row: int, k: int, search_k: int | None = None
    ) -> list[tuple[int, float]]:
        """:meth:`neighbour_rows` of a row."""
        _check_k(k)
        listed = self.lists_meet_target and (k <= self.width or self.width >= len(self) - 1)
        if listed:
            ids = self._lists[row, :k].tolist()
            scores = self._scores[row, :k].tolist()
            return [(i, s) for i, s in zip(ids, scores, strict=True) if i >= 0]
        return self.nearest_rows(self._vectors[row], k, search_k, exclude=row)

    def nearest(self, vector: Any, k: int, search_k: int | None = None) -> list[Neighbour]:
        """The ``k`` tracks nearest a retrieval-space vector, best first, scored exactly."""
        return self._neighbours(self.nearest_rows(vector, k, search_k))

    def nearest_rows(
        self, vector: Any, k: int, search_k: int | None = None, *, exclude: int | None = None
    ) -> list[tuple[int, float]]:
        """:meth:`nearest` as ``(row, score)`` pairs; ``exclude`` leaves one row out.

        Raises:
            SnapshotClosed: The snapshot was closed.
        """
        _check_k(k)
        query = unit(vector)
        wanted = min(len(self), k + (exclude is not None))
        self._enter()
        try:
            found = self._index.get_nns_by_vector(query, wanted, self._search_k(wanted, search_k))
        finally:
            self._exit()
        rows = np.asarray([r for r in found if r != exclude][:wanted], dtype=np.int64)
        if len(rows) == 0:
            return []
        # Exact re-ranking: the scores match the stored lists' and the fresh segment's.
        scores = self._vectors[rows] @ query
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(rows[i]), float(scores[i])) for i in order]

    def _search_k(self, wanted: int, search_k: int | None) -> int:
        # The tuned one (-1, ANNOY's "choose", also means it), but never below ANNOY's own
        # default for this many results: a wide request must get them all.
        if search_k is not None and search_k != -1:
            return search_k
        return max(self.manifest.search_k, self.manifest.trees * wanted)

    def with_tag(
        self, track_id: str, k: int, tag: str, search_k: int | None = None
    ) -> list[Neighbour]:
        """The ``k`` tracks most similar to ``track_id`` among those carrying ``tag``."""
        return self._neighbours(self.tagged_neighbour_rows(track_id, k, tag))

    def tagged_neighbour_rows(self, track_id: str, k: int, tag: str) -> list[tuple[int, float]]:
        """:meth:`with_tag` as ``(row, score)`` pairs.

        The stored list answers when at least ``k`` of it carry the tag (any tagged track
        outside it scores lower than all of it); otherwise the rows carrying the tag are scored
        exactly, a bounded amount of work that never searches the whole catalogue: all of a
        rare tag's, or a common tag's by cell within a budget (see
        :func:`snapshots.tag_query.best_in_cells`).
        """
        _check_k(k)
        row = self._row(track_id)
        rows = self.tagged_rows(tag)
        listed = self._lists[row]
        listed = listed[listed >= 0]
        if len(listed) and len(rows) and self.lists_meet_target:
            at = np.minimum(np.searchsorted(rows, listed), len(rows) - 1)
            carries = rows[at] == listed
            if int(carries.sum()) >= k or len(listed) >= len(self) - 1:
                scores = self._scores[row, : len(listed)]
                return [
                    (int(i), float(s))
                    for i, s in zip(listed[carries][:k], scores[carries][:k], strict=True)
                ]
        if self.tag_cells is not None and len(rows) > WHOLE_TAG_ROWS:
            query = unit(self._vectors[row])
            return best_in_cells(self.tag_cells, self._vectors, tag, query, k, exclude=row)
        return self.subset_rows(self._vectors[row], rows, k, exclude=row)

    def subset_rows(
        self,
        vector: Any,
        rows: npt.NDArray[np.int32] | I64,
        k: int,
        *,
        exclude: int | None = None,
    ) -> list[tuple[int, float]]:
        """The ``k`` best of ``rows`` for a retrieval-space vector, scored exactly in blocks."""
        query = unit(vector)
        best_rows = np.empty(0, dtype=np.int64)
        best_scores = np.empty(0, dtype=np.float32)
        for start in range(0, len(rows), _SUBSET_BLOCK):
            block = np.asarray(rows[start : start + _SUBSET_BLOCK], dtype=np.int64)
            if exclude is not None:
                block = block[block != exclude]
            scores = self._vectors[block] @ query
            best_rows = np.concatenate([best_rows, block])
            best_scores = np.concatenate([best_scores, scores])
            if len(best_rows) > k:
                keep = np.argpartition(best_scores, len(best_scores) - k)[-k:]
                best_rows, best_scores = best_rows[keep], best_scores[keep]
        order = np.argsort(-best_scores, kind="stable")
        return [(int(best_rows[i]), float(best_scores[i])) for i in order]

    def stored_list(self, row: int) -> tuple[npt.NDArray[np.int32], F32]:
        """A row's stored neighbour rows and their exact scores, best first (read-only views).

        Rows of ``-1`` pad a list when the snapshot holds fewer than :attr:`width` other rows.
        """
        return self._lists[row], self._scores[row]

    def stored_head(self, row: int, k: int) -> tuple[list[int], list[float]]:
        """The first ``k`` (at most :attr:`width`) of a row's stored neighbours and scores."""
        start = row * self.width
        stop = start + min(k, self.width)
        # The scores' view holds floats ("f"); typeshed types every view's tolist() as ints.
        scores = cast(list[float], self._score_items[start:stop].tolist())
        return self._list_items[start:stop].tolist(), scores

    def top_scores(self, rows: npt.ArrayLike) -> F32:
        """The best stored score of each of ``rows``: how close its nearest other track is."""
        if self.width == 0:
            return np.full(np.shape(rows), -np.inf, dtype=np.float32)
        found: F32 = self._scores[np.asarray(rows, dtype=np.int64), 0]
        return found

    def rows_vectors(self, rows: npt.ArrayLike) -> F32:
        """The retrieval-space vectors of ``rows`` (a copy, one row each)."""
        found: F32 = self._vectors[np.asarray(rows, dtype=np.int64)]
        return found

    def copies(self) -> dict[int, frozenset[int]]:
        """Rows that share an ISRC or an audio digest with other rows: row -> those rows.

        Read once from the metadata (a scan of the mapped file, done by :meth:`warm`), so a
        query learns whether a row has copies of that kind without decoding anything.
        """
        if self._copies is None:
            with self._copies_lock:
                if self._copies is None:
                    self._copies = self._find_copies()
        return self._copies

    def alone(self) -> npt.NDArray[np.bool_]:
        """Per row, whether it has no copy (computed once, by :meth:`warm`).

        A row has none when it shares no ISRC or digest and no stored neighbour of it is at
        cosine >= :data:`COPY_COSINE`. A query whose candidates are all alone groups nothing.
        """
        if self._alone is None:
            copies = self.copies()
            with self._alone_lock:
                if self._alone is None:
                    flags = self.top_scores(np.arange(len(self))) < COPY_COSINE - SCORE_MARGIN
                    if copies:
                        flags[np.fromiter(copies, dtype=np.int64, count=len(copies))] = False
                    self._alone = flags
        return self._alone

    def plain_depths(self) -> npt.NDArray[np.int32]:
        """Per row, how many nearest tracks a query by it takes with no copy in sight.

        Computed once, by :meth:`warm`. A query by row ``r`` for ``k <= depth[r]`` tracks
        meets no copy: ``r`` is :meth:`alone`, and so is every stored neighbour scored within
        :data:`COPY_WINDOW` (and :data:`SCORE_MARGIN`) below the k-th, which is everything a
        reader grouping copies looks at before it can stop. 0 for a row that is not alone.
        """
        if self._depths is None:
            alone = self.alone()
            with self._alone_lock:
                if self._depths is None and not self.lists_meet_target:
                    self._depths = np.zeros(len(self), dtype=np.int32)  # the lists answer none
                if self._depths is None:
                    self._depths = _plain_depths(self._lists, self._scores, alone)
        return self._depths

    def plain_depth(self, row: int) -> int:
        """:meth:`plain_depths` of one row."""
        if self._depth_items is None:
            self._depth_items = _flat(self.plain_depths(), "i")
        depth: int = self._depth_items[row]
        return depth

    def _find_copies(self) -> dict[int, frozenset[int]]:
        by_key: dict[tuple[bytes, bytes], list[int]] = {}
        starts: list[int] = []
        keys: list[tuple[bytes, bytes]] = []
        for found in _COPY_KEY.finditer(self._lines):
            starts.append(found.start())
            keys.append((found.group(1), found.group(2)))
        if not keys:
            return {}
        rows = (np.searchsorted(self._offsets, np.asarray(starts), side="right") - 1).tolist()
        for key, row in zip(keys, rows, strict=True):
            by_key.setdefault(key, []).append(row)
        shared: dict[int, set[int]] = {}
        for members in by_key.values():
            if len(members) > 1:
                for row in members:
                    shared.setdefault(row, set()).update(m for m in members if m != row)
        return {row: frozenset(others) for row, others in shared.items()}

    def vector(self, track_id: str) -> F32:
        """The track's vector in the retrieval space (unit length, float32, a copy)."""
        return np.array(self._vectors[self._row(track_id)], dtype=np.float32)

    def row_vector(self, row: int) -> F32:
        """A row's vector in the retrieval space (a read-only view)."""
        vector: F32 = self._vectors[row]
        return vector

    def tagged_rows(self, tag: str) -> npt.NDArray[np.int32]:
        """The rows carrying ``tag`` (case-insensitive), sorted."""
        start, end = self._spans.get(tag.lower(), (0, 0))
        return self._tagged[start:end]

    def tagged(self, tag: str) -> Sequence[str]:
        """Ids of the tracks whose top tags include ``tag`` (case-insensitive), in row order."""
        return RowIds(self._ids, self.tagged_rows(tag))

    def track_ids(self) -> Sequence[str]:
        """Every row's track id, in row order (decoded when read)."""
        return RowIds(self._ids)

    def tags(self) -> list[str]:
        """Every tag some track carries (lower-cased), sorted."""
        return sorted(self._spans)

    def transform(self, raw_vector: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Map a raw extractor vector into this snapshot's retrieval space, unit-normalised.

        Raises:
            ValueError: The vector is not ``manifest.dim`` finite floats, or has no direction
                in the retrieval space.
        """
        return to_retrieval_space(self.space, raw_vector, self.manifest.dim)

    def warm(self) -> None:
        """Read the files once and run a few queries, so the first requests are not slow."""
        for name in (INDEX_NAME, VECTORS_NAME, NEIGHBOURS_NAME, SCORES_NAME, IDS_NAME):
            with (self.folder / name).open("rb") as handle:
                while handle.read(_WARM_CHUNK):
                    pass
        self.plain_depths()
        self.public_spans()
        step = max(1, len(self) // _WARM_QUERIES)
        for row in range(0, len(self), step)[:_WARM_QUERIES]:
            self.nearest_rows(self._vectors[row], 10, exclude=row)

    def close(self) -> None:
        """Unload the index (at once, or when the queries still running return)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._active == 0:
                self._finalizer()

    def _row(self, track_id: str) -> int:
        row = self.row_of(track_id)
        if row is None:
            raise TrackNotIndexed(track_id, self.version)
        return row

    def _neighbours(self, pairs: list[tuple[int, float]]) -> list[Neighbour]:
        return [Neighbour(self.info(row), score) for row, score in pairs]

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
                self._finalizer()


def _plain_depths(
    lists: npt.NDArray[np.int32], scores: F32, alone: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int32]:
    """:meth:`LoadedSnapshot.plain_depths` of every row, a block of rows at a time."""
    count, width = lists.shape
    depths = np.zeros(count, dtype=np.int32)
    if width == 0:
        return depths
    for start in range(0, count, _DEPTH_BLOCK):
        listed = np.asarray(lists[start : start + _DEPTH_BLOCK], dtype=np.int64)
        ranked = np.asarray(scores[start : start + _DEPTH_BLOCK])  # best first, -inf padded
        valid = listed >= 0
        # Where the first neighbour with a copy is (width: none has one; padding has none).
        lone = alone[np.where(valid, listed, 0)] | ~valid
        first_copy = np.where(lone.all(axis=1), width, np.argmin(lone, axis=1))
        # For k = j + 1, the neighbours within the window below the k-th are all alone when the
        # first that is not (scores are sorted) scores below that window.
        copy_score = np.take_along_axis(ranked, np.minimum(first_copy, width - 1)[:, None], axis=1)
        clear = (first_copy[:, None] == width) | (
            copy_score < ranked - (COPY_WINDOW + SCORE_MARGIN)
        )
        fits = valid & clear & alone[start : start + len(listed), None]
        # Fitting is monotone in k (the window only widens), so the depth is the first misfit.
        depths[start : start + len(listed)] = np.where(
            fits.all(axis=1), width, np.argmin(fits, axis=1)
        )
    return depths


def _public_spans(lines: Any, offsets: I64) -> I64:
    """:meth:`LoadedSnapshot.public_spans`, from the keys' positions in the whole file."""
    count = len(offsets) - 1
    ends = offsets[1:] - 2  # the closing brace and the newline

    def positions(key: bytes) -> tuple[I64, I64]:
        found = np.fromiter((m.start() for m in re.finditer(re.escape(key), lines)), np.int64)
        return found, np.searchsorted(offsets, found, side="right") - 1

    tags_at, tag_rows = positions(_TAGS_KEY)
    isrc_at, isrc_rows = positions(_ISRC_KEY)
    private_at, private_rows = positions(_PRIVATE_KEYS)
    tags = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
    tags[tag_rows] = tags_at
    isrc = np.full(count, -1, dtype=np.int64)
    isrc[isrc_rows] = isrc_at
    servable = (np.bincount(tag_rows, minlength=count) == 1) & (
        np.bincount(isrc_rows, minlength=count) <= 1
    )
    servable &= isrc < tags
    cut = ends.copy()
    after = private_at > tags[private_rows]
    cut[private_rows[after]] = private_at[after]
    spans = np.empty((count, 3), dtype=np.int64)
    spans[:, 0] = offsets[:-1]
    spans[:, 1] = np.where(isrc >= 0, cut, tags)
    spans[:, 2] = np.where(servable, cut, -1)
    return spans


def forget_older_half(cache: dict[Any, Any]) -> None:
    """Drop the older half of a full cache (dicts keep insertion order).

    Bounded, and the rows used lately stay, unlike clearing it all at once.
    """
    for key in list(itertools.islice(cache, len(cache) // 2)):
        del cache[key]


def _check_k(k: int) -> None:
    if k < 1:
        msg = f"k must be at least 1, got {k}"
        raise ValueError(msg)


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
