"""Neighbour lists of every row: exact search in blocks, and a cell-probing search for big sets.

Reads and writes nothing: unit-normalised float32 rows in, ``(ids, scores)`` arrays out, scores
being dot products (cosine similarity). Everything here blocks on BLAS, which uses every core, so
async callers run it in a thread.

Exact search costs ``n^2 * dim`` and is used for small snapshots. Above that, rows are grouped
into cells by spherical k-means; a cell's rows are scored exactly against the rows of the
``probes`` cells whose centres lie nearest its own (itself first). More probes: better recall
and more work; the builder picks the fewest that reach its recall target on a sample
(:mod:`snapshots.recall`), so the recall stated in the manifest is the one served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

#: Score-matrix elements per block (64 MB of float32): bounds memory whatever the size.
BLOCK_ELEMENTS = 1 << 24
#: Up to this many rows, lists are computed exactly (a few seconds on two cores).
EXACT_MAX_ROWS = 20_000
#: Spherical k-means rounds, and rows per cell it is fitted on.
KMEANS_ROUNDS = 6
KMEANS_SAMPLE_PER_CELL = 48


def top_k(scores: F32, k: int) -> tuple[I64, F32]:
    """Per row of ``scores``, the columns of the ``k`` highest values and the values, best first."""
    k = min(k, scores.shape[1])
    if k == 0:
        empty = np.empty((scores.shape[0], 0))
        return empty.astype(np.int64), empty.astype(np.float32)
    if k < scores.shape[1]:
        # argpartition on the largest values (not on a negated copy: several times faster).
        part = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
    else:
        part = np.broadcast_to(np.arange(k), (scores.shape[0], k))
    values = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(values, order, axis=1)


def exact_neighbours(vectors: F32, rows: I64, k: int) -> tuple[I32, F32]:
    """The exact ``k`` nearest rows of each of ``rows`` among all rows, never the row itself.

    Returns:
        ``(len(rows), k')`` ids and scores with ``k' = min(k, n - 1)``, best first.
    """
    n = vectors.shape[0]
    width = min(k, n - 1)
    ids = np.empty((len(rows), width), dtype=np.int32)
    scores = np.empty((len(rows), width), dtype=np.float32)
    block = max(1, BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        block_scores = vectors[chunk] @ vectors.T
        block_scores[np.arange(len(chunk)), chunk] = -np.inf
        found, values = top_k(block_scores, width)
        ids[start : start + len(chunk)] = found
        scores[start : start + len(chunk)] = values
    return ids, scores


@dataclass(frozen=True)
class Cells:
    """Rows grouped by their nearest of ``len(centres)`` unit centres.

    Attributes:
        centres: ``(cells, dim)`` unit vectors.
        order: Row ids sorted by cell; cell ``c`` holds ``order[starts[c]:starts[c + 1]]``.
        starts: ``cells + 1`` offsets into ``order``.
        probes: ``(cells, cells)``: per cell, every cell by nearness of centres, itself first.
    """

    centres: F32
    order: I64
    starts: I64
    probes: I64

    @property
    def count(self) -> int:
        """The number of cells."""
        return int(self.centres.shape[0])

    def members(self, cell: int) -> I64:
        """The rows of one cell."""
        return self.order[self.starts[cell] : self.starts[cell + 1]]

    def cell_of(self) -> I64:
        """Each row's cell."""
        cells = np.empty(len(self.order), dtype=np.int64)
        for cell in range(self.count):
            cells[self.members(cell)] = cell
        return cells


def _normalise(rows: F32) -> F32:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: F32 = (rows / norms).astype(np.float32)
    return out


def _nearest_centre(vectors: F32, centres: F32) -> I64:
    out = np.empty(vectors.shape[0], dtype=np.int64)
    block = max(1, BLOCK_ELEMENTS // max(centres.shape[0], 1))
    for start in range(0, vectors.shape[0], block):
        out[start : start + block] = np.argmax(vectors[start : start + block] @ centres.T, axis=1)
    return out


def fit_cells(vectors: F32, seed: int = 2017) -> Cells:
    """Group the rows into about ``sqrt(n)`` cells by spherical k-means on a sample."""
    n = vectors.shape[0]
    count = max(1, int(round(np.sqrt(n))))
    rng = np.random.default_rng(seed)
    sample_size = min(n, count * KMEANS_SAMPLE_PER_CELL)
    sample = vectors[np.sort(rng.choice(n, size=sample_size, replace=False))]
    centres = sample[rng.choice(sample_size, size=count, replace=False)].copy()
    for _ in range(KMEANS_ROUNDS):
        assigned = _nearest_centre(sample, centres)
        sums = np.zeros_like(centres)
        np.add.at(sums, assigned, sample)
        sizes = np.bincount(assigned, minlength=count)
        empty = sizes == 0
        # An empty cell restarts from a random row rather than staying dead.
        sums[empty] = sample[rng.choice(sample_size, size=int(empty.sum()))]
        centres = _normalise(sums)
    assigned = _nearest_centre(vectors, centres)
    order = np.argsort(assigned, kind="stable")
    starts = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(assigned, minlength=count), out=starts[1:])
    probes = np.argsort(-(centres @ centres.T), axis=1, kind="stable")
    # Itself first even when two centres coincide.
    for cell in range(count):
        row = probes[cell]
        if row[0] != cell:
            probes[cell] = np.concatenate(([cell], row[row != cell]))
    return Cells(centres=centres, order=order, starts=starts, probes=probes)


def cell_neighbours(
    vectors: F32, cells: Cells, k: int, probes: int, rows: I64 | None = None
) -> tuple[I32, F32]:
    """The ``k`` best rows among the rows of ``probes`` cells near each row's own cell.

    Args:
        vectors: All rows, unit-normalised.
        cells: Their cells (:func:`fit_cells`).
        k: Neighbours per row.
        probes: Cells searched per row (1 to ``cells.count``; all of them is exact search).
        rows: The rows to answer for (default: all), e.g. a recall sample.

    Returns:
        ``(len(rows), min(k, n - 1))`` ids and scores, best first, padded with id ``-1`` and
        score ``-inf`` when the probed cells hold fewer rows.
    """
    n = vectors.shape[0]
    width = min(k, n - 1)
    wanted = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    out_ids = np.full((len(wanted), width), -1, dtype=np.int32)
    out_scores = np.full((len(wanted), width), -np.inf, dtype=np.float32)
    position = np.full(n, -1, dtype=np.int64)
    position[wanted] = np.arange(len(wanted))
    cell_of = cells.cell_of()
    # Where each row sits within its own cell: its own cell's rows come first among the
    # candidates, so that is also its column in the score block.
    slot_in_cell = np.empty(n, dtype=np.int64)
    slot_in_cell[cells.order] = np.arange(n) - cells.starts[cell_of[cells.order]]
    probes = max(1, min(probes, cells.count))
    for cell in range(cells.count):
        members = cells.members(cell) if rows is None else wanted[cell_of[wanted] == cell]
        if len(members) == 0:
            continue
        candidates = np.concatenate([cells.members(c) for c in cells.probes[cell, :probes]])
        pool = vectors[candidates]
        block = max(1, BLOCK_ELEMENTS // max(len(candidates), 1))
        for start in range(0, len(members), block):
            chunk = members[start : start + block]
            scores = vectors[chunk] @ pool.T
            # The row itself is among its own cell's candidates: exclude it by id.
            scores[np.arange(len(chunk)), slot_in_cell[chunk]] = -np.inf
            found, values = top_k(scores, width)
            slots = position[chunk]
            out_ids[slots, : found.shape[1]] = candidates[found]
            out_scores[slots, : found.shape[1]] = values
    out_ids[~np.isfinite(out_scores)] = -1
    return out_ids, out_scores
