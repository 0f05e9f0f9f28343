"""Neighbour lists of a badly unbalanced catalogue: bounded work, recall still at the target.

Three vectors copied thousands of times (with noise far below float32's resolution, so k-means
cannot split the copies and a few cells hold most rows) beside loose clusters of other rows:
every overfull cell is cut into pieces of at most the cap, and the lists the builder's probes
choose still reach the recall target against exact search.
"""

from __future__ import annotations

import numpy as np

from snapshots.knn import F32, candidate_cap, cell_neighbours, fit_cells, pieces
from snapshots.recall import exact_truth, list_recall, sample_rows

COPIES = 12_000
SPREAD = 3_000
TARGET = 0.99


def _catalogue() -> F32:
    rng = np.random.default_rng(7)
    dim = 8
    originals = rng.standard_normal((3, dim))
    copies = originals[rng.integers(0, 3, COPIES)] + rng.standard_normal((COPIES, dim)) * 1e-9
    centres = rng.standard_normal((30, dim)) * 3
    spread = centres[rng.integers(0, 30, SPREAD)] + rng.standard_normal((SPREAD, dim))
    vectors = np.concatenate([copies, spread]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def test_overfull_cells_are_cut_to_the_cap_and_the_lists_reach_the_target() -> None:
    vectors = _catalogue()
    n = len(vectors)
    cells = fit_cells(vectors, keep=16)
    cap = candidate_cap(n, cells.count, 1)
    homes = np.bincount(cells.nearest[:, 0], minlength=cells.count)
    assert homes.max() > cap  # the copies overfill cells: the case under test
    projections = vectors @ np.random.default_rng(1).standard_normal((8, 8)).astype(np.float32)
    for cell in np.flatnonzero(homes > cap).tolist():
        rows = np.flatnonzero(cells.nearest[:, 0] == cell)
        cut = pieces(projections, rows, cap)
        assert max(len(piece) for piece in cut) <= cap
        # Every row of the cell is in exactly one piece.
        assert np.array_equal(np.sort(np.concatenate(cut)), np.arange(len(rows)))
    truth = exact_truth(vectors, sample_rows(n, 500))
    reached = {}
    for probes in (1, 2, 4, 8, 16):  # as the builder tries them, the fewest first
        reached[probes] = list_recall(
            truth, *cell_neighbours(vectors, cells, 10, probes, rows=truth.rows)
        )
        if reached[probes] >= TARGET:
            break
    assert max(reached.values()) >= TARGET, reached
    assert max(reached) <= 16  # reached by the cells, not by exact search
