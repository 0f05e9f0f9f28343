"""The catalogue map: a deterministic 2-D projection that keeps clusters apart."""

from __future__ import annotations

import numpy as np

from snapshots.projection import project_2d


def test_clusters_stay_apart_and_the_map_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(0, 0.05, (50, 160)) + np.eye(160)[0]
    b = rng.normal(0, 0.05, (50, 160)) + np.eye(160)[1]
    vectors = np.vstack([a, b]).astype(np.float32)
    coords = project_2d(vectors)
    assert coords.shape == (100, 2)
    assert np.abs(coords).max() == 1.0
    # The clusters fall on opposite sides of the first axis.
    assert np.sign(coords[:50, 0]).min() == np.sign(coords[:50, 0]).max()
    assert np.sign(coords[:50, 0].mean()) != np.sign(coords[50:, 0].mean())
    np.testing.assert_array_equal(coords, project_2d(vectors))
    # A sample fits the axes; every row is still placed.
    assert project_2d(vectors, sample=20).shape == (100, 2)


def test_one_track_sits_at_the_centre() -> None:
    coords = project_2d(np.ones((1, 160), dtype=np.float32))
    assert coords.tolist() == [[0.0, 0.0]]
