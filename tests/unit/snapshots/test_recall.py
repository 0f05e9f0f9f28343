"""Recall is measured, not assumed: weak searches report low recall; builds meet their target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from annoy import AnnoyIndex

from snapshots.builder import BuildOptions, Columns, write_columns
from snapshots.index import LoadedSnapshot
from snapshots.knn import cell_neighbours, exact_neighbours, fit_cells
from snapshots.recall import (
    exact_truth,
    list_recall,
    recall_of,
    sample_rows,
    search_recall,
    tune_search_k,
)


def _unit_rows(n: int, dim: int, seed: int, clusters: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if clusters:
        centres = rng.standard_normal((clusters, dim))
        rows = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim))
    else:
        rows = rng.standard_normal((n, dim))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(np.float32)


def test_a_weak_ann_search_reports_low_recall_and_a_wide_one_full_recall() -> None:
    vectors = _unit_rows(3000, 32, seed=1)
    index = AnnoyIndex(32, "angular")
    index.set_seed(1)
    for row, vector in enumerate(vectors):
        index.add_item(row, vector)
    index.build(1)
    truth = exact_truth(vectors, sample_rows(3000, 300))
    weak = search_recall(truth, vectors, index.get_nns_by_vector, 11)
    exhaustive = search_recall(truth, vectors, index.get_nns_by_vector, 3000 * 4)
    assert weak < 0.5
    assert exhaustive == 1.0
    search_k, reached = tune_search_k(
        truth, vectors, index.get_nns_by_vector, start=11, target=0.95, limit=3000 * 4
    )
    assert reached >= 0.95
    assert 11 < search_k <= 3000 * 4


def test_lists_from_too_few_cells_report_low_recall_and_all_cells_are_exact() -> None:
    vectors = _unit_rows(4000, 32, seed=2)  # no structure: one cell misses most neighbours
    truth = exact_truth(vectors, sample_rows(4000, 400))
    cells = fit_cells(vectors)
    one = cell_neighbours(vectors, cells, 10, probes=1, rows=truth.rows)
    every = cell_neighbours(vectors, cells, 10, probes=cells.count, rows=truth.rows)
    assert list_recall(truth, *one) < 0.5
    assert list_recall(truth, *every) == 1.0
    exact_ids, _ = exact_neighbours(vectors, truth.rows, 10)
    assert (every[0] == exact_ids).mean() > 0.99  # same rows, up to ties


def test_a_built_snapshot_states_recall_that_meets_its_target(tmp_path: Path) -> None:
    vectors = _unit_rows(2500, 48, seed=3, clusters=40)
    ids = [f"t{i:05d}" for i in range(2500)]
    meta: list[dict[str, Any]] = [
        {"track_id": t, "name": None, "artists": [], "album": None, "tags": []} for t in ids
    ]
    built = write_columns(
        tmp_path,
        Columns(ids, vectors, meta),
        model_version="m",
        trees=2,  # few trees: search_k must grow to reach the target
        source_mark=None,
        options=BuildOptions(neighbours=16, recall_target=0.98, recall_sample=500),
    )
    recall = built.manifest.recall
    assert recall is not None
    assert (recall["at"], recall["sample"], recall["target"]) == (10, 500, 0.98)
    assert recall["lists"] == 1.0  # small snapshots get exact lists
    assert recall["search"] >= 0.98
    assert built.manifest.search_k > 2 * 11
    assert built.manifest.neighbours == 16

    # What the manifest states is what the snapshot serves: measure it again from outside.
    snapshot = LoadedSnapshot.open(tmp_path)
    space = np.stack([snapshot.row_vector(row) for row in range(2500)])
    truth = exact_truth(space, sample_rows(2500, 300, seed=9))
    found = np.full((300, 10), -np.inf, dtype=np.float32)
    for i, row in enumerate(truth.rows):
        answer = snapshot.nearest_rows(space[row], 10, exclude=int(row))
        found[i, : len(answer)] = [score for _, score in answer]
        by_id = snapshot.neighbour_rows(f"t{row:05d}", 10)
        assert [r for r, _ in by_id] == list(np.load(tmp_path / "neighbours.npy")[row, :10])
    assert recall_of(truth, found) >= 0.97


def test_a_big_build_missing_its_target_states_its_recall_instead_of_going_exact(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import snapshots.builder

    # Stand-ins for "big": cells from 1,500 rows on, and no exact fallback above 1,000.
    monkeypatch.setattr(snapshots.builder, "EXACT_MAX_ROWS", 1000)
    monkeypatch.setattr(snapshots.builder, "EXACT_FALLBACK_MAX_ROWS", 1000)
    vectors = _unit_rows(3000, 64, seed=4)  # no structure: few cells cannot reach 0.999
    ids = [f"t{i:05d}" for i in range(3000)]
    meta: list[dict[str, Any]] = [
        {"track_id": t, "name": None, "artists": [], "album": None, "tags": []} for t in ids
    ]
    built = write_columns(
        tmp_path,
        Columns(ids, vectors, meta),
        model_version="m",
        trees=2,
        source_mark=None,
        options=BuildOptions(neighbours=10, recall_target=0.999, recall_sample=300),
    )
    recall = built.manifest.recall
    assert recall is not None
    # Every probe a row has, and the recall they reach: below the target, stated as it is.
    assert recall["probes"] == 16
    assert recall["lists"] < 0.999
    truth = exact_truth(np.load(tmp_path / "vectors.npy"), sample_rows(3000, 300, seed=8))
    stored = np.load(tmp_path / "scores.npy")[truth.rows]
    measured = list_recall(truth, np.empty((0, 0), dtype=np.int32), stored)
    assert abs(measured - recall["lists"]) < 0.05


def test_exact_search_in_tiles_and_column_ranges_is_exact(monkeypatch: Any) -> None:
    import snapshots.knn

    # Small blocks, two workers: queries in several blocks, columns in many tiles and two ranges.
    monkeypatch.setattr(snapshots.knn, "BLOCK_ELEMENTS", 4096)
    monkeypatch.setattr(snapshots.knn, "QUERY_BLOCK", 64)
    monkeypatch.setattr(snapshots.knn, "WORKERS", 2)
    vectors = _unit_rows(2000, 16, seed=5, clusters=20)
    for rows in (sample_rows(2000, 50, seed=1), sample_rows(2000, 700, seed=2)):
        ids, scores = exact_neighbours(vectors, rows, 12)
        full = vectors[rows] @ vectors.T
        full[np.arange(len(rows)), rows] = -np.inf
        expected = -np.sort(-full, axis=1)[:, :12]
        assert np.allclose(scores, expected, atol=1e-6)
        assert np.allclose(np.take_along_axis(full, ids.astype(np.int64), axis=1), scores)
        assert not (ids == rows[:, None]).any()


def test_the_few_nearest_cells_by_maxima_are_the_first_of_the_many() -> None:
    from snapshots.knn import widen

    vectors = _unit_rows(3000, 16, seed=6, clusters=30)
    few = fit_cells(vectors, keep=3)
    many = widen(vectors, few)
    assert (few.max_probes, many.max_probes) == (3, 16)
    assert (many.nearest[:, :3] == few.nearest).all()
    assert np.array_equal(many.nearest, fit_cells(vectors).nearest)
