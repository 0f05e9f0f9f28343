"""Recall@k against exact search, measured on a sample of a snapshot's own rows.

Reads and writes nothing: arrays and an ANNOY index in, figures out. The builder measures both
ways a snapshot answers (its stored neighbour lists, and ANNOY search re-ranked exactly for query
vectors), picks the cheapest settings that reach the target, and records the figures in the
manifest, so a snapshot states the recall it serves.

A found neighbour counts as correct when its exact score reaches the k-th exact score (less a
float tolerance): with tied scores any of the tied rows is as good an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from snapshots.knn import F32, I32, I64, exact_neighbours

#: Scores computed in different blocks may differ in their last float32 bits.
TOLERANCE = 1e-5
#: Recall is stated at this many neighbours.
AT = 10


@dataclass(frozen=True)
class Truth:
    """Exact neighbours of a sample of rows: what recall is measured against."""

    rows: I64
    kth_score: F32  # the ``at``-th best exact score of each sample row
    at: int


def sample_rows(n: int, size: int, seed: int = 2017) -> I64:
    """``size`` distinct rows (all of them when there are fewer), sorted."""
    if size >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False)).astype(np.int64)


def exact_truth(vectors: F32, rows: I64, at: int = AT) -> Truth:
    """The exact ``at``-th best score of each sample row (itself excluded)."""
    at = min(at, vectors.shape[0] - 1)
    _, scores = exact_neighbours(vectors, rows, at)
    kth = scores[:, at - 1] if at > 0 else np.full(len(rows), np.inf, dtype=np.float32)
    return Truth(rows=rows, kth_score=kth.astype(np.float32), at=at)


def recall_of(truth: Truth, found_scores: F32) -> float:
    """Mean share of the first ``at`` found scores (best first, ``-inf`` padded) that are right."""
    if truth.at == 0 or len(truth.rows) == 0:
        return 1.0
    top = found_scores[:, : truth.at]
    hits = (top >= truth.kth_score[:, None] - TOLERANCE).sum(axis=1)
    return float(np.mean(np.minimum(hits, truth.at) / truth.at))


def list_recall(truth: Truth, ids: I32, scores: F32) -> float:
    """Recall of stored neighbour lists (rows of ``ids``/``scores`` for the sample rows)."""
    del ids  # the scores are exact; which row holds them does not matter for ties
    padded = scores
    if scores.shape[1] < truth.at:
        fill = np.full((scores.shape[0], truth.at - scores.shape[1]), -np.inf, dtype=np.float32)
        padded = np.concatenate([scores, fill], axis=1)
    return recall_of(truth, padded)


def search_recall(
    truth: Truth, vectors: F32, search: Callable[[F32, int, int], list[int]], search_k: int
) -> float:
    """Recall of ``search(vector, count, search_k)`` (candidate rows) re-ranked exactly."""
    found = np.full((len(truth.rows), truth.at), -np.inf, dtype=np.float32)
    for i, row in enumerate(truth.rows):
        query = vectors[row]
        candidates = [c for c in search(query, truth.at + 1, search_k) if c != row][: truth.at]
        if candidates:
            exact = np.sort(vectors[np.asarray(candidates)] @ query)[::-1]
            found[i, : len(exact)] = exact
    return recall_of(truth, found)


def tune_search_k(
    truth: Truth,
    vectors: F32,
    search: Callable[[F32, int, int], list[int]],
    *,
    start: int,
    target: float,
    limit: int,
) -> tuple[int, float]:
    """The smallest doubling of ``start`` whose recall reaches ``target`` (or ``limit``'s).

    Returns:
        ``(search_k, recall)``.
    """
    search_k = max(1, start)
    while True:
        recall = search_recall(truth, vectors, search, search_k)
        if recall >= target or search_k >= limit:
            return search_k, recall
        search_k = min(limit, search_k * 2)


def figures(**values: Any) -> dict[str, Any]:
    """Round the floats of a recall record for the manifest."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
