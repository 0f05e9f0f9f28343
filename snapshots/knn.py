"""Neighbour lists of every row: exact search in blocks, and a cell-probing search for big sets.

Reads and writes nothing: unit-normalised float32 rows in, ``(ids, scores)`` arrays out, scores
being dot products (cosine similarity). Everything here blocks on BLAS, which uses every core, so
async callers run it in a thread.

Exact search costs ``n^2 * dim`` and is used for small snapshots. Above that, ``4 sqrt(n)``
cells are fitted by spherical k-means, two levels deep (:func:`fit_cells`); every row is listed
in its ``probes`` nearest cells, and a row is scored exactly against the rows listed in its own
nearest cell. The same cells group each tag's rows (:mod:`snapshots.tag_cells`). More probes: better
recall and more work; the builder picks the fewest that reach its recall target on a sample
(:mod:`snapshots.recall`), so the recall stated in the manifest is the one served.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

#: Score-matrix elements per block, shared by the workers (16 MB of float32, and a partition's
#: int64 positions twice that): bounds memory whatever the size, and stays near the caches.
BLOCK_ELEMENTS = 1 << 22
#: Threads sharing the blocks of a search (each block's scores stay within BLOCK_ELEMENTS).
WORKERS = max(1, min(4, os.cpu_count() or 1))
#: Queries per block of an exact search.
QUERY_BLOCK = 1024
#: Up to this many rows, lists are computed exactly (a few seconds on two cores).
EXACT_MAX_ROWS = 20_000
#: Cells per square root of the row count: the tag filter's count (smaller cells bound a tag
#: query better, see snapshots.tag_cells), so one fit and one assignment serve both. Listing
#: costs ``n * probes * n / cells`` scores and assigning (two levels) about
#: ``n * GROUP_PROBES * sqrt(cells)``: on 100k clustered rows, 2 probes of these cells reached
#: recall 0.995 where 1 probe of half as many (assigned flat) reached 0.996, for a third less
#: CPU time with the tag cells' fit and assignment counted.
CELLS_PER_ROOT = 4.0
#: Spherical k-means rounds, and rows per cell it is fitted on.
KMEANS_ROUNDS = 6
KMEANS_SAMPLE_PER_CELL = 48


def top_k(scores: F32, k: int) -> tuple[I64, F32]:
    """Per row of ``scores``, the columns of the ``k`` highest values and the values, best first."""
    k = min(k, scores.shape[1])
    if k == 0:
        empty = np.empty((scores.shape[0], 0))
        return empty.astype(np.int64), empty.astype(np.float32)
    if k == 1:  # the nearest centre: argmax is many times cheaper than a partition
        best = np.argmax(scores, axis=1)[:, None]
        return best.astype(np.int64), np.take_along_axis(scores, best, axis=1)
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

    Queries go in blocks of :data:`QUERY_BLOCK` against tiles of the rows, so the rows are read
    once per block of queries (not once per few queries), and a tile is partitioned only for the
    queries it can improve: after the first tiles, most queries' k-th best already beats every
    score of a tile, and a row maximum is many times cheaper than a partition.

    Returns:
        ``(len(rows), k')`` ids and scores with ``k' = min(k, n - 1)``, best first.
    """
    n = vectors.shape[0]
    width = min(k, n - 1)
    ids = np.zeros((len(rows), width), dtype=np.int32)
    scores = np.full((len(rows), width), -np.inf, dtype=np.float32)
    if width <= 0 or len(rows) == 0:
        return ids, scores
    queries = min(len(rows), QUERY_BLOCK)
    tile = max(1, BLOCK_ELEMENTS // queries // WORKERS)
    # Columns are split into one range per worker when the queries are too few to share out
    # and the rows many.
    few = -(-len(rows) // queries) < WORKERS
    ranges = WORKERS if few and n >= WORKERS * tile else 1
    cuts = np.linspace(0, n, ranges + 1).astype(np.int64)
    found_ids = np.zeros((ranges, len(rows), width), dtype=np.int32)
    found_scores = np.full((ranges, len(rows), width), -np.inf, dtype=np.float32)

    def one(item: int) -> None:
        block, part = divmod(item, ranges)
        start = block * queries
        chunk = rows[start : start + queries]
        wanted = vectors[chunk]
        best_ids = found_ids[part, start : start + queries]
        best = found_scores[part, start : start + queries]
        for low in range(int(cuts[part]), int(cuts[part + 1]), tile):
            high = min(low + tile, int(cuts[part + 1]))
            tile_scores = wanted @ vectors[low:high].T
            own = np.flatnonzero((chunk >= low) & (chunk < high))
            tile_scores[own, chunk[own] - low] = -np.inf
            better = np.flatnonzero(tile_scores.max(axis=1) > best[:, -1])
            if len(better) == 0:
                continue
            top, values = top_k(tile_scores[better], width)
            if low == cuts[part]:  # the first tile: nothing to merge with
                best_ids[better, : top.shape[1]] = top + low
                best[better, : top.shape[1]] = values
                continue
            merged_ids = np.concatenate([best_ids[better], (top + low).astype(np.int32)], axis=1)
            merged = np.concatenate([best[better], values], axis=1)
            keep, kept = top_k(merged, width)
            best_ids[better] = np.take_along_axis(merged_ids, keep, axis=1)
            best[better] = kept

    _in_threads(one, -(-len(rows) // queries) * ranges)
    if ranges == 1:
        return found_ids[0], found_scores[0]
    merged_ids = np.concatenate(list(found_ids), axis=1)
    keep, kept = top_k(np.concatenate(list(found_scores), axis=1), width)
    return np.take_along_axis(merged_ids, keep, axis=1), kept


@dataclass(frozen=True)
class Cells:
    """Rows grouped around ``len(centres)`` unit centres, each row with its nearest centres.

    Attributes:
        centres: ``(cells, dim)`` unit vectors.
        nearest: ``(n, MAX_PROBES')`` per row its nearest centres, nearest first.
        cosine: ``(n,)`` per row its cosine to its nearest centre.
        groups: The coarse centres and the cells under each (see :func:`fit_cells`).
    """

    centres: F32
    nearest: I32
    cosine: F32
    groups: _Groups

    @property
    def count(self) -> int:
        """The number of cells."""
        return int(self.centres.shape[0])

    @property
    def max_probes(self) -> int:
        """The most cells a row can be listed in."""
        return int(self.nearest.shape[1])


#: Each row's nearest centres kept: the most probes a search can use before exact search.
MAX_PROBES = 16
#: Up to this many nearest centres are found by row maxima rather than a partition.
FEW_BY_MAXIMUM = 4
#: A row is scored against at most this many times the mean rows of a cell (and at least
#: CAP_MIN), whatever the probes: above what a few probes of k-means cells list on spread data,
#: so mostly the cells that clustered or duplicated data overfill are cut (see :func:`pieces`),
#: and listing costs at most ``n * cap`` scores on any data.
CAP_PER_MEAN = 8
CAP_MIN = 1024
#: Of the rows a row of an overfull cell is scored against, 1 / CORE_SHARE are the rows of
#: the cell nearest its centre, the same for every piece (see :func:`cell_neighbours`).
CORE_SHARE = 2
#: Fixed random directions an overfull cell is cut along (see :func:`pieces`), and their seed.
PROJECTIONS = 8
PROJECTION_SEED = 2017
#: Coarse groups whose cells a row is scored against (see :func:`fit_cells`). On 100k clustered
#: rows (2000 clusters, 36 groups), a row's nearest cell was found in its 2, 4, 8 nearest groups
#: for 93%, 98%, 99.5% of the rows, and the lists' recall at 2 probes was 0.92, 0.98, 0.995.
GROUP_PROBES = 8


def _normalise(rows: F32) -> F32:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: F32 = (rows / norms).astype(np.float32)
    return out


def _in_threads(work: Callable[[int], None], items: int) -> None:
    # numpy's partitions and BLAS release the GIL: blocks in a pool use every core where the
    # partitions alone (the larger part of the work) would use one.
    if items <= 1 or WORKERS <= 1:
        for item in range(items):
            work(item)
        return
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="knn") as pool:
        for _ in pool.map(work, range(items)):
            pass


def _best_columns(scores: F32, count: int) -> tuple[I64, F32]:
    # Per row the ``count`` highest columns and their values, best first; ``scores`` is spent.
    count = min(count, scores.shape[1])
    if count > FEW_BY_MAXIMUM:
        return top_k(scores, count)
    # A few nearest, one row maximum at a time: several times cheaper than a partition.
    at = np.arange(scores.shape[0])
    columns = np.empty((scores.shape[0], count), dtype=np.int64)
    values = np.empty((scores.shape[0], count), dtype=np.float32)
    for rank in range(count):
        best = np.argmax(scores, axis=1)
        columns[:, rank] = best
        values[:, rank] = scores[at, best]
        scores[at, best] = -np.inf
    return columns, values


def _nearest_centres(vectors: F32, centres: F32, count: int) -> I32:
    out = np.empty((vectors.shape[0], count), dtype=np.int32)
    block = max(1, BLOCK_ELEMENTS // max(centres.shape[0], 1) // WORKERS)

    def one(item: int) -> None:
        start = item * block
        scores = vectors[start : start + block] @ centres.T
        out[start : start + block] = _best_columns(scores, count)[0]

    _in_threads(one, -(-vectors.shape[0] // block))
    return out


def _kmeans(sample: F32, count: int, rng: np.random.Generator) -> tuple[F32, I64]:
    # Spherical k-means of ``sample`` (``count`` <= its rows); the centres and each row's cell.
    centres = sample[rng.choice(len(sample), size=count, replace=False)].copy()
    assigned = np.zeros(len(sample), dtype=np.int64)
    for _ in range(KMEANS_ROUNDS):
        assigned = _nearest_centres(sample, centres, 1)[:, 0].astype(np.int64)
        order = np.argsort(assigned, kind="stable")
        sizes = np.bincount(assigned, minlength=count)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        sums = np.zeros_like(centres)
        filled = sizes > 0
        sums[filled] = np.add.reduceat(sample[order], starts[filled], axis=0)
        # An empty cell restarts from a random row rather than staying dead.
        sums[~filled] = sample[rng.choice(len(sample), size=int((~filled).sum()))]
        centres = _normalise(sums)
    assigned = _nearest_centres(sample, centres, 1)[:, 0].astype(np.int64)
    return centres, assigned


@dataclass(frozen=True)
class _Groups:
    # The cells under each coarse centre: ``members[g, :sizes[g]]`` are group ``g``'s cells.
    coarse: F32
    members: I64
    sizes: I64

    @classmethod
    def of(cls, coarse: F32, owner: I64) -> _Groups:
        sizes = np.bincount(owner, minlength=coarse.shape[0]).astype(np.int64)
        members = np.full((coarse.shape[0], max(1, int(sizes.max()))), -1, dtype=np.int64)
        by_group = np.argsort(owner, kind="stable")
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        for group, (start, size) in enumerate(zip(starts.tolist(), sizes.tolist(), strict=True)):
            members[group, :size] = by_group[start : start + size]
        return cls(coarse, members, sizes)


def _assign(vectors: F32, centres: F32, groups: _Groups, count: int) -> tuple[I32, F32]:
    # Each row's ``count`` nearest cells among those of its GROUP_PROBES nearest groups, and its
    # cosine to the nearest; a row whose groups hold fewer cells is scored against them all.
    n = vectors.shape[0]
    count = min(count, centres.shape[0])
    probes = min(GROUP_PROBES, groups.coarse.shape[0])
    width = groups.members.shape[1]
    nearest = np.empty((n, count), dtype=np.int32)
    cosine = np.empty(n, dtype=np.float32)
    block = max(1, BLOCK_ELEMENTS // (probes * width + groups.coarse.shape[0]) // WORKERS)

    def one(item: int) -> None:
        start = item * block
        rows = vectors[start : start + block]
        near, _ = _best_columns(rows @ groups.coarse.T, probes)
        scores = np.full((len(rows), probes, width), -np.inf, dtype=np.float32)
        # One product per group for every row probing it, whichever its rank among the row's
        # groups: a few large products rather than many small ones.
        flat = near.reshape(-1)
        order = np.argsort(flat, kind="stable")
        bounds = np.searchsorted(flat[order], np.arange(groups.coarse.shape[0] + 1))
        for group in np.flatnonzero(bounds[1:] > bounds[:-1]).tolist():
            at, probe = np.divmod(order[bounds[group] : bounds[group + 1]], probes)
            size = int(groups.sizes[group])
            cells = groups.members[group, :size]
            scores[at, probe, :size] = rows[at] @ centres[cells].T
        picked, values = _best_columns(scores.reshape(len(rows), -1), count)
        probe_of, slot = np.divmod(picked, width)
        found = groups.members[np.take_along_axis(near, probe_of, axis=1), slot]
        short = np.flatnonzero(~np.isfinite(values[:, -1]))
        if len(short):
            # The cells found stay first, in order (scores are at most 1): the nearest few are
            # the first of the many, whatever ``count``.
            full = rows[short] @ centres.T
            for rank in range(count):
                known = np.flatnonzero(np.isfinite(values[short, rank]))
                full[known, found[short[known], rank]] = values[short[known], rank] + 4.0
            found[short], values[short] = _best_columns(full, count)
            values[short] = np.where(values[short] > 2.0, values[short] - 4.0, values[short])
        nearest[start : start + len(rows)] = found
        cosine[start : start + len(rows)] = values[:, 0]

    _in_threads(one, -(-n // block))
    return nearest, cosine


def fit_cells(
    vectors: F32,
    seed: int = 2017,
    *,
    per_root: float = CELLS_PER_ROOT,
    keep: int = MAX_PROBES,
) -> Cells:
    """``per_root * sqrt(n)`` cells, two levels deep; each row's nearest cells.

    About ``sqrt(cells)`` coarse centres are fitted by spherical k-means on a sample, then each
    coarse group's cells on the sample rows of the group, as many as its share of the sample.
    A row is scored against the coarse centres, then against the cells of its
    :data:`GROUP_PROBES` nearest groups only: ``n * 3 sqrt(cells)`` scores instead of
    ``n * cells``. Each row keeps its ``keep`` nearest cells found so (at most
    :data:`MAX_PROBES`; :func:`widen` finds more later, when more probes are needed).
    """
    n = vectors.shape[0]
    count = min(n, max(1, int(round(per_root * np.sqrt(n)))))
    rng = np.random.default_rng(seed)
    sample_size = min(n, count * KMEANS_SAMPLE_PER_CELL)
    sample = vectors[np.sort(rng.choice(n, size=sample_size, replace=False))]
    coarse, group_of = _kmeans(sample, max(1, int(round(np.sqrt(count)))), rng)
    shares = np.bincount(group_of, minlength=coarse.shape[0])
    centres: list[F32] = []
    owners: list[I64] = []
    for group in np.flatnonzero(shares).tolist():
        rows = sample[group_of == group]
        cells = min(len(rows), max(1, int(round(count * len(rows) / sample_size))))
        centres.append(_kmeans(rows, cells, rng)[0])
        owners.append(np.full(cells, len(owners), dtype=np.int64))
    groups = _Groups.of(coarse[shares > 0], np.concatenate(owners))
    every = np.concatenate(centres)
    nearest, cosine = _assign(vectors, every, groups, min(keep, MAX_PROBES))
    return Cells(every, nearest, cosine, groups)


def widen(vectors: F32, cells: Cells, keep: int = MAX_PROBES) -> Cells:
    """The same cells with each row's ``keep`` nearest cells (at most :data:`MAX_PROBES`)."""
    nearest, cosine = _assign(vectors, cells.centres, cells.groups, min(keep, MAX_PROBES))
    return Cells(cells.centres, nearest, cosine, cells.groups)


def cell_neighbours(
    vectors: F32, cells: Cells, k: int, probes: int, rows: I64 | None = None
) -> tuple[I32, F32]:
    """Per row, the ``k`` best among the rows listed in its nearest cell.

    Every row is listed in its ``probes`` nearest cells, so a row's candidates are the rows
    that have its cell among their ``probes`` nearest: a neighbour across a cell border is
    found when the border is near it too. ``probes`` beyond :attr:`Cells.max_probes` is exact.

    Args:
        vectors: All rows, unit-normalised.
        cells: Their cells (:func:`fit_cells`).
        k: Neighbours per row.
        probes: Cells each row is listed in.
        rows: The rows to answer for (default: all), e.g. a recall sample.

    Returns:
        ``(len(rows), min(k, n - 1))`` ids and scores, best first, padded with id ``-1`` and
        score ``-inf`` when the candidates are fewer.
    """
    n = vectors.shape[0]
    wanted = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    if probes > cells.max_probes:
        return exact_neighbours(vectors, wanted, k)
    width = min(k, n - 1)
    out_ids = np.full((len(wanted), width), -1, dtype=np.int32)
    out_scores = np.full((len(wanted), width), -np.inf, dtype=np.float32)
    # Inverted lists: (cell, row) for every row in each of its nearest ``probes`` cells.
    listed_cells = cells.nearest[:, :probes].reshape(-1).astype(np.int64)
    listed_rows = np.repeat(np.arange(n, dtype=np.int64), probes)
    order = np.lexsort((listed_rows, listed_cells))
    listed_cells, listed_rows = listed_cells[order], listed_rows[order]
    bounds = np.searchsorted(listed_cells, np.arange(cells.count + 1))
    home = cells.nearest[wanted, 0].astype(np.int64)
    by_home = np.argsort(home, kind="stable")
    home_bounds = np.searchsorted(home[by_home], np.arange(cells.count + 1))

    cap = candidate_cap(n, cells.count, probes)
    projections: list[F32] = []
    lock = threading.Lock()

    def projected() -> F32:
        # Every row on a few fixed random directions, made once, when a cell first needs cutting.
        with lock:
            if not projections:
                directions = np.random.default_rng(PROJECTION_SEED).standard_normal(
                    (vectors.shape[1], PROJECTIONS)
                )
                projections.append(vectors @ directions.astype(np.float32))
        return projections[0]

    def one(cell: int) -> None:
        slots = by_home[home_bounds[cell] : home_bounds[cell + 1]]
        if len(slots) == 0:
            return
        every = listed_rows[bounds[cell] : bounds[cell + 1]]  # sorted; holds the queries
        if len(every) <= cap:
            score_against(slots, every)
            return
        # The rows nearest the centre join every piece: on near-copies of one vector they are
        # the copies with the least noise, which are every copy's nearest.
        near = top_k((vectors[every] @ cells.centres[cell])[None, :], cap // CORE_SHARE)[0][0]
        core = np.sort(every[near])
        for piece in pieces(projected(), every, cap - len(core)):
            # The queries of the piece (each row is in one piece of its nearest cell).
            mine = np.isin(wanted[slots], every[piece])
            score_against(slots[mine], np.union1d(every[piece], core))

    def score_against(slots: I64, candidates: I64) -> None:
        queries = wanted[slots]
        pool = vectors[candidates]
        block = max(1, BLOCK_ELEMENTS // max(len(candidates), 1) // WORKERS)
        for start in range(0, len(queries), block):
            chunk = queries[start : start + block]
            scores = vectors[chunk] @ pool.T
            scores[np.arange(len(chunk)), np.searchsorted(candidates, chunk)] = -np.inf
            found, values = top_k(scores, width)
            at = slots[start : start + block]
            out_ids[at, : found.shape[1]] = candidates[found]
            out_scores[at, : found.shape[1]] = values

    _in_threads(one, cells.count)
    out_ids[~np.isfinite(out_scores)] = -1
    return out_ids, out_scores


def candidate_cap(n: int, cells: int, probes: int) -> int:
    """The most rows a row is scored against in :func:`cell_neighbours` (see :func:`pieces`)."""
    del probes  # more probes list a row in more cells, not against more rows
    return max(CAP_MIN, int(CAP_PER_MEAN * n / max(cells, 1)))


def pieces(projections: F32, rows: I64, cap: int) -> list[I64]:
    """Positions in sorted ``rows`` cut into pieces of at most ``cap`` rows, each sorted.

    Clustered or duplicated data can put most rows in a few cells whatever the centres (a
    blob of near-copies of one vector has no structure k-means can split evenly), and scoring
    a cell's rows against each other costs its size squared. A cell over ``cap`` is halved at
    the median of its rows' ``projections`` on one fixed random direction, each half on the
    next direction, until every piece fits: rows near each other stay together more often than
    not, and a row is scored against at most ``cap`` rows, whatever the data. The recall this
    costs is measured on the sample like any other (:func:`snapshots.recall.list_recall`).
    """
    if len(rows) <= cap:
        return [np.arange(len(rows), dtype=np.int64)]
    done: list[I64] = []
    todo = [(np.arange(len(rows), dtype=np.int64), 0)]
    while todo:
        part, depth = todo.pop()
        if len(part) <= cap:
            done.append(np.sort(part))
            continue
        values = projections[rows[part], depth % projections.shape[1]]
        order = np.argsort(values, kind="stable")
        half = len(part) // 2
        todo += [(part[order[:half]], depth + 1), (part[order[half:]], depth + 1)]
    return sorted(done, key=lambda piece: int(piece[0]))
