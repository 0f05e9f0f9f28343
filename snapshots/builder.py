"""Builds an immutable snapshot of one model version's vectors into a local folder.

Reads the model version's change mark, vectors and track metadata from Cassandra (through
:mod:`snapshots.source`) and how much of the catalogue they cover (:mod:`snapshots.coverage`);
writes the files of :data:`snapshots.manifest.DATA_FILES` and ``manifest.json`` into the work
folder: the ANNOY index, the retrieval-space vectors, each row's neighbour list, the rows of
each tag and the offset-indexed metadata. Rows are dense ids ``0..n-1`` in sorted track-id
order; row ``i`` of every file is the same track.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from annoy import AnnoyIndex
from threadpoolctl import threadpool_limits

from features.versions import RetrievalSpace
from snapshots.coverage import measure
from snapshots.errors import NothingToIndex
from snapshots.knn import (
    EXACT_MAX_ROWS,
    FEW_BY_MAXIMUM,
    MAX_PROBES,
    Cells,
    cell_neighbours,
    exact_neighbours,
    fit_cells,
    widen,
)
from snapshots.lines import Lines, LinesBuilder, compose, tag_pairs
from snapshots.local import digest_file
from snapshots.manifest import (
    DATA_FILES,
    IDS_NAME,
    INDEX_NAME,
    MANIFEST_NAME,
    METRIC,
    MODEL_VERSION_RE,
    NEIGHBOURS_NAME,
    OFFSETS_NAME,
    SCORES_NAME,
    SEARCH_FILES,
    TAG_CELL_FILES,
    TAGGED_NAME,
    TAGS_NAME,
    TRACKS_NAME,
    VECTORS_NAME,
    XY_NAME,
    Manifest,
    new_version,
)
from snapshots.projection import project_2d
from snapshots.recall import (
    Truth,
    exact_truth,
    figures,
    list_recall,
    sample_rows,
    tune_search_k,
)
from snapshots.source import checked_keyspace, current_mark, read_columns, read_metadata
from snapshots.tag_cells import build_tag_cells
from snapshots.text_index import Postings, PostingsBuilder, sorted_unique, write_postings
from snapshots.transform import MIN_STD, Identity, Transform, ZScore, retrieval_space_of
from stores.cassandra import CassandraSession

logger = logging.getLogger(__name__)

#: Fixed ANNOY seed: the same vectors, trees and ``jobs`` give the same index file.
SEED = 2017
#: ``search_k`` is doubled from ``trees x 11`` at most until it is this many times larger.
SEARCH_K_GROWTH = 256
#: Above this many rows, lists that miss the target with every probe stay as they are (and the
#: manifest states their recall) instead of falling back to exact search, which costs n^2.
EXACT_FALLBACK_MAX_ROWS = 100_000
#: Metadata lines joined and written at once.
_ROWS_CHUNK = 1024
#: The members every ``tracks.jsonl`` row has.
_LINE_KEYS = frozenset({"name", "artists", "album", "tags"})
#: The standard JSON decoder's scanner: one value from a position of a string, and its end.
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
#: BLAS threads per matrix product while the trees are built beside (see write_columns).
SIDE_BLAS_THREADS = 1
#: Rows per block when z-scoring and normalising in place.
_BLOCK_ROWS = 65_536


@dataclass(frozen=True)
class TrackVector:
    """One track to index: its vector, and the metadata stored beside its row."""

    track_id: str
    vector: npt.NDArray[np.float32]
    name: str | None = None
    artists: tuple[str, ...] = ()
    album: str | None = None
    tags: Mapping[str, float] = field(default_factory=dict)
    isrc: str | None = None
    audio_sha256: str | None = None


@dataclass(frozen=True)
class BuiltSnapshot:
    """A snapshot written to a local folder, ready to publish.

    Attributes:
        folder: Holds ``manifest.json`` and the files it lists.
        manifest: The snapshot's manifest (also in ``folder``).
    """

    folder: Path
    manifest: Manifest
    #: Seconds each step of the build took (``annoy_s``, ``lists_s``, ``tune_s``...); the trees
    #: and the lists are built at the same time, together in ``trees_and_lists_s``.
    timings: Mapping[str, float] = field(default_factory=dict)


async def build_snapshot(
    db: CassandraSession,
    keyspace: str,
    model_version: str,
    trees: int,
    workdir: Path,
    *,
    jobs: int = 1,
    options: BuildOptions | None = None,
) -> BuiltSnapshot:
    """Read every vector of a model version and build a snapshot of them into ``workdir``.

    The change mark is read before the vectors, so a vector written during the build moves the
    mark past the manifest's ``source_mark`` and the next check triggers another build.

    Args:
        db: An open session.
        keyspace: The keyspace holding the tables.
        model_version: The model version to index.
        trees: ANNOY trees to build (more: better recall, bigger file).
        workdir: Folder to write into (created if needed; the three files are overwritten).
        jobs: Threads building trees (-1: every core); reproducible only for the same ``jobs``.
        options: Neighbour-list length and recall target.

    Returns:
        The snapshot written to ``workdir``.

    Raises:
        NothingToIndex: The model version has no usable vectors; nothing was written.
    """
    ks = checked_keyspace(keyspace)
    _check_model_version(model_version)
    built_at = datetime.now(UTC)
    mark = await current_mark(db, ks, model_version)
    read = await read_columns(db, ks, model_version)
    if not read.ids:
        msg = (
            f"model version {model_version!r} has no usable vectors in {ks}.embeddings "
            f"({len(read.skipped)} skipped); nothing to build"
        )
        raise NothingToIndex(msg)
    coverage = await measure(db, ks, model_version, read.ids)
    meta = await read_metadata(db, ks, read.ids)
    # Composed from the parts read, already encoded: one buffer, not a dict per track.
    lines = LinesBuilder()
    for row, track_id in enumerate(read.ids):
        lines.add(
            compose(track_id, meta.fields[row], read.tags[row], meta.isrc[row], read.digests[row])
        )
    del meta
    columns = Columns(ids=read.ids, vectors=read.vectors, meta=lines.finish())
    del read
    return await asyncio.to_thread(
        write_columns,
        workdir,
        columns,
        model_version=model_version,
        trees=trees,
        source_mark=mark,
        built_at=built_at,
        jobs=jobs,
        missing=coverage.missing,
        options=options,
    )


def write_snapshot(
    workdir: Path,
    tracks: Sequence[TrackVector],
    *,
    model_version: str,
    trees: int,
    source_mark: int | None,
    built_at: datetime | None = None,
    version: str | None = None,
    jobs: int = 1,
    space: RetrievalSpace | None = None,
    missing: int = 0,
    dim: int | None = None,
    options: BuildOptions | None = None,
) -> BuiltSnapshot:
    """Write a snapshot of ``tracks`` into ``workdir`` (blocking; run it in a thread).

    A convenience over :func:`write_columns` for a list of tracks; see it for the arguments.

    Raises:
        NothingToIndex: ``tracks`` is empty.
        ValueError: The model version is not a plain name, a track id repeats, or a vector has
            the wrong length or is not finite.
    """
    _check_model_version(model_version)
    if not tracks:
        msg = f"no tracks given for model version {model_version!r}; nothing to build"
        raise NothingToIndex(msg)
    want = dim if dim is not None else len(tracks[0].vector)
    for track in tracks:
        if track.vector.shape != (want,) or not np.isfinite(track.vector).all():
            msg = f"track {track.track_id!r}: vector must be {want} finite floats"
            raise ValueError(msg)
    columns = Columns(
        ids=[t.track_id for t in tracks],
        vectors=np.stack([t.vector for t in tracks]).astype(np.float32),
        meta=[_track_line(t) for t in tracks],
    )
    return write_columns(
        workdir,
        columns,
        model_version=model_version,
        trees=trees,
        source_mark=source_mark,
        built_at=built_at,
        version=version,
        jobs=jobs,
        space=space,
        missing=missing,
        options=options,
    )


@dataclass
class Columns:
    """The tracks to index as columns: ids, one float32 array of vectors, metadata rows.

    Attributes:
        ids: Track ids, unique, in any order.
        vectors: ``(len(ids), dim)`` float32 raw vectors, row ``i`` for ``ids[i]``;
            :func:`write_columns` sorts and transforms them in place (a writeable, contiguous
            float32 array is overwritten; pass a copy to keep it).
        meta: Per track its ``tracks.jsonl`` object (``track_id``, ``name``, ``artists``,
            ``album``, ``tags`` as ``[tag, score]`` pairs best first, see :func:`track_line`),
            or those objects already encoded (:class:`~snapshots.lines.Lines`, line ``i`` for
            ``ids[i]``), which a big catalogue takes far less memory as.
    """

    ids: list[str]
    vectors: npt.NDArray[np.float32]
    meta: list[dict[str, Any]] | Lines


@dataclass(frozen=True)
class BuildOptions:
    """How neighbour lists and search settings are chosen.

    Attributes:
        neighbours: Length of each row's stored neighbour list.
        recall_target: Recall@10 the lists and ANNOY search must reach on the sample.
        recall_sample: Rows recall is measured on (all rows when there are fewer).
    """

    neighbours: int = 32
    recall_target: float = 0.99
    recall_sample: int = 1000


def write_columns(
    workdir: Path,
    columns: Columns,
    *,
    model_version: str,
    trees: int,
    source_mark: int | None,
    built_at: datetime | None = None,
    version: str | None = None,
    jobs: int = 1,
    space: RetrievalSpace | None = None,
    missing: int = 0,
    options: BuildOptions | None = None,
) -> BuiltSnapshot:
    """Write a snapshot of ``columns`` into ``workdir`` (blocking; run it in a thread).

    Rows are assigned in sorted track-id order, so the same tracks always get the same rows.
    Vectors are mapped into the retrieval space and unit-normalised: the retrieval space, in
    which a dot product is the cosine similarity. Then it builds the ANNOY index, every row's
    neighbour list, measures recall@10 of both on a sample against exact search, and picks the
    list probes and ANNOY ``search_k`` that reach the target.

    Args:
        workdir: Folder to write into (created if needed).
        columns: The tracks; ids must be unique, vectors finite and all of one length.
        model_version: Recorded in the manifest.
        trees: ANNOY trees to build.
        source_mark: Recorded in the manifest (see :class:`Manifest`).
        built_at: Build time (default: now); also dates the version.
        version: The snapshot version (default: a new one dated ``built_at``).
        jobs: Threads building trees (-1: every core); reproducible only for the same ``jobs``.
        space: The retrieval space (default: the one the model version declares): ``zscore``
            indexes z-scored vectors, with the statistics fitted on the tracks; ``cosine``
            indexes them as they are. The manifest's ``transform`` records which (see
            :mod:`snapshots.transform`).
        missing: Recorded in the manifest: tracks of other model versions not in ``tracks``.
        options: Neighbour-list length and recall target (default :class:`BuildOptions`).

    Returns:
        The snapshot written.

    Raises:
        NothingToIndex: There are no tracks.
        ValueError: The model version is not a plain name, a track id repeats, or a vector is
            not finite.
    """
    _check_model_version(model_version)
    options = options or BuildOptions()
    count = len(columns.ids)
    if count == 0:
        msg = f"no tracks given for model version {model_version!r}; nothing to build"
        raise NothingToIndex(msg)
    if trees < 1:
        msg = f"trees must be at least 1, got {trees}"
        raise ValueError(msg)
    if columns.vectors.ndim != 2 or columns.vectors.shape[0] != count:
        msg = f"vectors of shape {columns.vectors.shape} for {count} track ids"
        raise ValueError(msg)
    lines = columns.meta if isinstance(columns.meta, Lines) else Lines.from_rows(columns.meta)
    if len(lines) != count:
        msg = f"{len(lines)} metadata lines for {count} track ids"
        raise ValueError(msg)
    built_at = built_at or datetime.now(UTC)
    timings: dict[str, float] = {}
    clock = time.monotonic()
    keys = [track_id.encode() for track_id in columns.ids]
    order = sorted(range(count), key=keys.__getitem__)
    for before, after in zip(order, order[1:], strict=False):
        if keys[before] == keys[after]:
            msg = f"track {columns.ids[after]!r} is given twice; rows need unique track ids"
            raise ValueError(msg)
    ordering = np.asarray(order, dtype=np.int64)
    # The vectors are sorted and transformed in the caller's array when it allows, so a
    # catalogue's vectors are held once (the sorting copy lives only for this line).
    vectors = columns.vectors
    if vectors.dtype != np.float32 or not vectors.flags.writeable or not vectors.flags.c_contiguous:
        vectors = vectors.astype(np.float32)
    vectors[:] = vectors[ordering]
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        bad = columns.ids[order[int(np.argmin(finite))]]
        msg = f"track {bad!r}: vector must be {vectors.shape[1]} finite floats"
        raise ValueError(msg)
    workdir.mkdir(parents=True, exist_ok=True)

    transform = _fit(space or retrieval_space_of(model_version), vectors)
    to_retrieval_space(vectors, transform)
    np.save(workdir / VECTORS_NAME, vectors)
    timings["prepare_s"] = time.monotonic() - clock
    clock = time.monotonic()
    # Each track's place on the catalogue map (a PCA of the unit vectors).
    np.save(workdir / XY_NAME, project_2d(vectors).astype(np.float32))
    ids = np.array([keys[i] for i in order])
    np.save(workdir / IDS_NAME, ids)
    del keys, ids
    timings["map_ids_s"] = time.monotonic() - clock
    clock = time.monotonic()

    index = AnnoyIndex(vectors.shape[1], METRIC)
    index.set_seed(SEED)
    for row in range(count):
        index.add_item(row, vectors[row])
    added_s = time.monotonic() - clock
    # ANNOY builds its trees without holding the GIL: the recall sample, the neighbour lists and
    # the metadata files are made meanwhile, so each keeps busy the cores the other leaves idle.
    # BLAS gets one thread per call meanwhile: the trees hold the cores already, and BLAS's own
    # threads, spinning while they wait for work, took CPU time from them (at 100k rows the
    # side work cost 12.2 CPU-seconds with them and 8.5 without, for the same results).
    with (
        threadpool_limits(SIDE_BLAS_THREADS, user_api="blas"),
        ThreadPoolExecutor(1, thread_name_prefix="annoy") as pool,
    ):
        trees_built = pool.submit(_build_trees, index, trees, jobs, workdir / INDEX_NAME)
        try:
            lists_clock = time.monotonic()
            sample = sample_rows(count, options.recall_sample)
            truth = exact_truth(vectors, sample)
            timings["truth_s"] = time.monotonic() - lists_clock
            lists_clock = time.monotonic()
            lists, probes, list_recall_value, cells = _neighbour_lists(vectors, truth, options)
            np.save(workdir / NEIGHBOURS_NAME, lists[0])
            np.save(workdir / SCORES_NAME, lists[1])
            width = int(lists[0].shape[1])
            del lists
            timings["lists_s"] = time.monotonic() - lists_clock
            lists_clock = time.monotonic()
            postings = _write_rows(workdir, lines, columns.ids, order)
            timings["rows_s"] = time.monotonic() - lists_clock
            lists_clock = time.monotonic()
            # The query nodes' search index, from the rows at hand: they need not decode them.
            write_postings(workdir, postings)
            del postings
            timings["search_s"] = time.monotonic() - lists_clock
            lists_clock = time.monotonic()
            # Each tag's rows by cell, so a tag filter scores the cells that can matter: the
            # lists' cells, assigned once (fitted here when the lists were exact).
            cells = cells or fit_cells(vectors, keep=1)
            build_tag_cells(workdir, cells.centres, cells.nearest[:, 0], cells.cosine)
            del cells
            timings["tag_cells_s"] = time.monotonic() - lists_clock
        finally:
            # Waited for whatever happened: the trees' thread must not outlive the build.
            timings["annoy_s"] = added_s + trees_built.result()
    timings["trees_and_lists_s"] = time.monotonic() - clock

    clock = time.monotonic()
    start = trees * (truth.at + 1)
    search_k, search_recall_value = tune_search_k(
        truth,
        vectors,
        index.get_nns_by_vector,
        start=start,
        target=options.recall_target,
        limit=max(start, start * SEARCH_K_GROWTH),
    )
    index.unload()
    del index, vectors
    timings["tune_s"] = time.monotonic() - clock

    clock = time.monotonic()

    recall = figures(
        at=truth.at,
        sample=len(sample),
        target=options.recall_target,
        lists=list_recall_value,
        probes=probes,
        search=search_recall_value,
    )
    manifest = Manifest(
        version=version or new_version(built_at),
        model_version=model_version,
        count=count,
        dim=int(columns.vectors.shape[1]),
        trees=trees,
        files={
            name: digest_file(workdir / name)
            for name in (*DATA_FILES, *SEARCH_FILES, *TAG_CELL_FILES)
        },
        built_at=built_at,
        source_mark=source_mark,
        transform=transform.to_dict(),
        neighbours=width,
        search_k=search_k,
        recall=recall,
        missing=missing,
    )
    (workdir / MANIFEST_NAME).write_bytes(manifest.to_json())
    timings["digest_s"] = time.monotonic() - clock
    logger.info(
        "built snapshot %s of %s: %d tracks, %d trees, recall@%d %.3f (lists) %.3f (search_k "
        "%d), %s",
        manifest.version,
        model_version,
        manifest.count,
        trees,
        truth.at,
        list_recall_value,
        search_recall_value,
        search_k,
        "complete" if manifest.complete else f"incomplete ({missing} tracks missing)",
    )
    return BuiltSnapshot(workdir, manifest, timings)


def fit_zscore(vectors: npt.NDArray[np.float32]) -> ZScore:
    """Per-dimension mean and standard deviation, accumulated in float64 one block at a time."""
    total = np.zeros(vectors.shape[1], dtype=np.float64)
    squares = np.zeros(vectors.shape[1], dtype=np.float64)
    for start in range(0, vectors.shape[0], _BLOCK_ROWS):
        block = vectors[start : start + _BLOCK_ROWS].astype(np.float64)
        total += block.sum(axis=0)
        squares += (block * block).sum(axis=0)
    mean = total / vectors.shape[0]
    std = np.sqrt(np.maximum(squares / vectors.shape[0] - mean * mean, 0.0))
    std[std < MIN_STD] = 1.0
    return ZScore(mean.astype(np.float32), std.astype(np.float32))


def _fit(space: RetrievalSpace, vectors: npt.NDArray[np.float32]) -> Transform:
    # Like snapshots.transform.fit_transform, but z-scoring accumulates block by block.
    if space == "zscore":
        return fit_zscore(vectors)
    return Identity(int(vectors.shape[1]))


def to_retrieval_space(vectors: npt.NDArray[np.float32], transform: Transform) -> None:
    """Apply ``transform`` and unit-normalise every row, in place, one block at a time."""
    for start in range(0, vectors.shape[0], _BLOCK_ROWS):
        block = vectors[start : start + _BLOCK_ROWS]
        if isinstance(transform, ZScore):
            block -= transform.mean
            block /= transform.std
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        norms[norms == 0] = 1.0  # a zero vector stays zero: it scores 0 against everything
        block /= norms


def _build_trees(index: AnnoyIndex, trees: int, jobs: int, path: Path) -> float:
    # Seconds to build and save. Saving maps the file in place of the built trees: the search
    # tuning runs beside a file-backed index instead of a second copy of it on the heap.
    clock = time.monotonic()
    index.build(trees, n_jobs=jobs)
    index.save(str(path))
    return time.monotonic() - clock


def _neighbour_lists(
    vectors: npt.NDArray[np.float32], truth: Truth, options: BuildOptions
) -> tuple[tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]], int, float, Cells | None]:
    # Exact for small snapshots; otherwise the fewest probes reaching the target on the sample.
    # Returns the lists, the probes, their recall on the sample and the cells (if any).
    count = vectors.shape[0]
    if count <= EXACT_MAX_ROWS:
        lists = exact_neighbours(vectors, np.arange(count, dtype=np.int64), options.neighbours)
        sampled = (lists[0][truth.rows], lists[1][truth.rows])
        return lists, 0, list_recall(truth, *sampled), None
    # A few probes usually reach the target: the nearest centres past those are found only
    # when they are needed.
    cells = fit_cells(vectors, keep=FEW_BY_MAXIMUM)
    probes = 1
    while True:
        sampled = cell_neighbours(vectors, cells, truth.at, probes, rows=truth.rows)
        recall = list_recall(truth, *sampled)
        if recall >= options.recall_target or probes > cells.max_probes:
            break
        if probes == cells.max_probes and cells.max_probes < min(MAX_PROBES, cells.count):
            cells = widen(vectors, cells)
        if probes == cells.max_probes and count > EXACT_FALLBACK_MAX_ROWS:
            break  # exact lists would cost n^2: state the recall the most probes reach
        # Past the most cells a row is listed in, the next step is exact search.
        probes = probes * 2 if probes * 2 <= cells.max_probes else cells.max_probes + 1
    lists = cell_neighbours(vectors, cells, options.neighbours, probes)
    return lists, probes, recall, cells


def _write_rows(workdir: Path, lines: Lines, ids: list[str], order: list[int]) -> Postings:
    # Row i is line order[i]: the lines, their byte offsets, per lower-cased tag the rows
    # carrying it, and the search index of names, artists and albums; each line is decoded once,
    # here, and nothing is kept per row but the tag rows (compact int arrays).
    source = np.asarray(order, dtype=np.int64)
    starts = lines.offsets[source] if len(source) else np.zeros(0, dtype=np.int64)
    ends = lines.offsets[source + 1] if len(source) else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=offsets[1:])
    tags = _TagRows()
    postings = PostingsBuilder()
    data = lines.data
    with (workdir / TRACKS_NAME).open("wb") as out:
        for first in range(0, len(order), _ROWS_CHUNK):
            spans = zip(
                starts[first : first + _ROWS_CHUNK].tolist(),
                ends[first : first + _ROWS_CHUNK].tolist(),
                strict=True,
            )
            chunk = [data[start:end] for start, end in spans]
            out.write(b"".join(chunk))
            with _collector_paused():
                rows = _decoded_lines(
                    chunk, [ids[source] for source in order[first : first + _ROWS_CHUNK]]
                )
                tags.add(rows, first)
                postings.add(
                    [row_data["name"] for row_data in rows],
                    [row_data["artists"] for row_data in rows],
                    [row_data["album"] for row_data in rows],
                )
    np.save(workdir / OFFSETS_NAME, offsets)
    tags.write(workdir)
    return postings.finish()


class _TagRows:
    # Per lower-cased tag the rows carrying it, collected a batch of rows at a time as flat
    # (tag number, row) pairs, sorted and deduplicated at the end (a row carrying "Rock" and
    # "rock" is listed once): no Python set or list per row.

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}  # a tag as a row holds it -> its lower-cased form's
        self._lowered: dict[str, int] = {}  # lower-cased tag -> number
        self._pairs: list[npt.NDArray[np.int64]] = []

    def _number(self, name: str) -> int:
        lowered = name.lower()
        number = self._numbers[name] = self._lowered.setdefault(lowered, len(self._lowered))
        return number

    def add(self, rows: list[dict[str, Any]], first: int) -> None:
        names = [name for row in rows for name, _ in row["tags"]]
        names = [name if type(name) is str else str(name) for name in names]
        known = self._numbers
        numbers = np.asarray(
            [known[name] if name in known else self._number(name) for name in names],
            dtype=np.int64,
        )
        per_row = np.fromiter((len(row["tags"]) for row in rows), dtype=np.int64, count=len(rows))
        self._pairs.append(numbers << 32 | np.repeat(np.arange(first, first + len(rows)), per_row))

    def write(self, workdir: Path) -> None:
        tags = sorted(self._lowered)
        rank = np.empty(len(tags), dtype=np.int64)
        rank[[self._lowered[tag] for tag in tags]] = np.arange(len(tags))
        pairs = np.concatenate([np.zeros(0, dtype=np.int64), *self._pairs])
        keys = sorted_unique(rank[pairs >> 32] << 32 | (pairs & 0xFFFFFFFF))
        ends = np.cumsum(np.bincount(keys >> 32, minlength=len(tags))).tolist()
        spans = {tag: [start, end] for tag, start, end in zip(tags, [0, *ends], ends, strict=False)}
        np.save(workdir / TAGGED_NAME, (keys & 0xFFFFFFFF).astype(np.int32))
        (workdir / TAGS_NAME).write_text(json.dumps(spans, sort_keys=True), encoding="utf-8")


@contextmanager
def _collector_paused() -> Iterator[None]:
    # A batch's decoded rows (a dict and a few lists each, no cycles) are young objects the
    # cyclic collector would traverse again and again while they live, a few milliseconds:
    # about a quarter of the rows step at 100k rows. Left as it was found, on or off.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _decoded_lines(lines: list[bytes], track_ids: list[str]) -> list[dict[str, Any]]:
    # Each line as _decoded takes it. Scanned by the JSON decoder's own scanner, each line must
    # be one object ending right before its newline, for its track, with every member: checked
    # for the whole batch at once, without json.loads' wrapper per line (working out the
    # encoding, skipping whitespace), which cost several times the scan itself. A batch that
    # fails goes line by line through _decoded, which raises for the line at fault.
    try:
        texts = [line.decode() for line in lines]
        scanned = [_SCAN(text, 0) for text in texts]
    except (StopIteration, ValueError):
        texts, scanned = [], []
    if len(scanned) == len(lines) and all(
        end == len(text) - 1
        and text.endswith("\n")
        and type(data) is dict
        and data.get("track_id") == track_id
        and data.keys() >= _LINE_KEYS
        for (data, end), text, track_id in zip(scanned, texts, track_ids, strict=True)
    ):
        return [data for data, _ in scanned]
    return [_decoded(line, track_id) for line, track_id in zip(lines, track_ids, strict=True)]


def _decoded(line: bytes, track_id: str) -> dict[str, Any]:
    # A given line must be a row of ``tracks.jsonl`` for its track, ending the file's line.
    try:
        data = json.loads(line)
        valid = (
            line.endswith(b"\n")
            and isinstance(data, dict)
            and data.get("track_id") == track_id
            and {"name", "artists", "album", "tags"} <= data.keys()
        )
    except ValueError:
        valid = False
    if not valid:
        msg = f"track {track_id!r}: its metadata line is not a tracks.jsonl row for it"
        raise ValueError(msg)
    return data  # type: ignore[no-any-return]


def _check_model_version(model_version: str) -> None:
    # Checked before any work: the name becomes part of object keys and local folder names.
    if not MODEL_VERSION_RE.match(model_version):
        msg = f"model version must match {MODEL_VERSION_RE.pattern}, got {model_version!r}"
        raise ValueError(msg)


def _track_line(track: TrackVector) -> dict[str, Any]:
    return track_line(
        track.track_id,
        track.name,
        track.artists,
        track.album,
        track.tags,
        isrc=track.isrc,
        audio_sha256=track.audio_sha256,
    )


def track_line(
    track_id: str,
    name: str | None,
    artists: Sequence[str],
    album: str | None,
    tags: Mapping[str, float],
    *,
    isrc: str | None = None,
    audio_sha256: str | None = None,
) -> dict[str, Any]:
    """A row of ``tracks.jsonl``.

    Fixed key order; tags as ``[tag, score]`` pairs best first (a list, because JSON objects
    carry no order), so "top tags" are a prefix. 4 decimals is all a tag score carries. The
    keys a response shows come first, in its order, so a query node sends most of a line as it
    is (see ``LoadedSnapshot.public_pieces``).
    """
    line: dict[str, Any] = {
        "track_id": track_id,
        "name": name,
        "artists": list(artists),
        "album": album,
    }
    # Written only when known, so rows (and snapshots) without them stay byte-identical; the
    # query node collapses copies of one recording by these.
    if isrc is not None:
        line["isrc"] = isrc
    line["tags"] = tag_pairs(tags)
    if audio_sha256 is not None:
        line["audio_sha256"] = audio_sha256
    return line
