"""Precision@k, average precision, groups, bootstrap and spaces on hand-made examples."""

from __future__ import annotations

import numpy as np
import pytest

from bench.metrics import bootstrap, nearest, per_query, rankings, transform


def on_circle(degrees: list[float]) -> np.ndarray:
    radians = np.deg2rad(degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


#: Item 0 sees 1 (A) at 10 degrees, 2 (B) at 25, 3 (A) at 45: relevant, not, relevant. No two
#: angles between items are equal, so no ranking depends on how ties are broken.
VECTORS = on_circle([0, 10, 25, 45])
LABELS = ["A", "A", "B", "A"]


def test_ranking_is_by_angle_and_excludes_the_query() -> None:
    assert rankings(VECTORS)[0] == [1, 2, 3]
    assert rankings(VECTORS)[3] == [2, 1, 0]
    assert nearest(VECTORS, 0, 2) == [1, 2]


def test_precision_at_k_and_average_precision_by_hand() -> None:
    scores = per_query(VECTORS, LABELS, k=2)
    # B (item 2) has no other B: no defined average precision, left out.
    assert scores.queries.tolist() == [0, 1, 3]
    # Query 0: [A, B, A] -> P@2 = 1/2, AP = (1/1 + 2/3) / 2.
    assert scores.precision[0] == pytest.approx(0.5)
    assert scores.average_precision[0] == pytest.approx(5 / 6)
    # Query 1: 0 at 10 degrees, 2 at 15, 3 at 35: [A, B, A].
    assert scores.average_precision[1] == pytest.approx(5 / 6)
    # Query 3: [B, A, A] -> P@2 = 1/2, AP = (1/2 + 2/3) / 2.
    assert scores.average_precision[2] == pytest.approx(7 / 12)
    assert scores.chance.tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3])
    assert per_query(VECTORS, LABELS, k=1).precision.tolist() == [1.0, 1.0, 0.0]


def test_items_of_one_group_are_never_each_others_neighbours() -> None:
    groups = ["x", "x", "y", "z"]  # items 0 and 1: two excerpts of one track
    assert rankings(VECTORS, groups)[0] == [2, 3]
    scores = per_query(VECTORS, LABELS, k=1, groups=groups)
    # Query 0: [B, A] -> P@1 = 0, AP = 1/2; query 1 likewise; query 3: [B, A(1), A(0)].
    assert scores.precision.tolist() == [0.0, 0.0, 0.0]
    assert scores.average_precision.tolist() == pytest.approx([0.5, 0.5, 7 / 12])


def test_precision_never_divides_by_more_than_the_candidates() -> None:
    scores = per_query(VECTORS[:2], ["A", "A"], k=10)
    assert scores.precision.tolist() == [1.0, 1.0]


def test_bootstrap_mean_and_interval() -> None:
    assert bootstrap([0.25, 0.75], 0) == bootstrap([0.5], 100)
    constant = bootstrap([0.4] * 7, 500)
    assert (constant.low, constant.mean, constant.high) == pytest.approx((0.4, 0.4, 0.4))
    # Two queries, 0 and 1: resampled means are 0, 1/2 or 1 with chances 1/4, 1/2, 1/4.
    spread = bootstrap([0.0, 1.0], 4000, seed=1)
    assert (spread.low, spread.mean, spread.high) == (0.0, 0.5, 1.0)
    values = np.random.default_rng(0).random(50)
    first, second = bootstrap(values, 1000, seed=3), bootstrap(values, 1000, seed=3)
    assert first == second
    assert first.low < values.mean() < first.high
    with pytest.raises(ValueError, match="no queries"):
        bootstrap([], 10)


def test_spaces() -> None:
    data = np.arange(20, dtype=np.float32).reshape(4, 5) ** 2
    np.testing.assert_array_equal(transform(data, "raw"), data)
    scored = transform(data, "zscore")
    np.testing.assert_allclose(scored.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(scored.std(axis=0), 1, atol=1e-6)
    weighted = transform(data, "blocks:1,0,2,1,1")
    np.testing.assert_allclose(weighted[:, 1], 0)
    np.testing.assert_allclose(weighted[:, 2], 2 * scored[:, 2], rtol=1e-6)
    with pytest.raises(ValueError, match="5 weights"):
        transform(data, "blocks:1,1")
    with pytest.raises(ValueError, match="unknown space"):
        transform(data, "cosine")
