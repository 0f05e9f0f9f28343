"""Retrieval quality of a set of labelled vectors: precision@k, average precision, bootstrap.

Reads and writes nothing; pure NumPy. Every item is a query; its candidates are all the other
items outside its group (items of one group, e.g. excerpts of one track, are never counted as each
other's neighbours), ranked by cosine similarity, i.e. angular distance, the metric of the
snapshots. A candidate is relevant when it has the query's label. Queries with no relevant
candidate have no defined average precision and are left out of both metrics.

The retrieval spaces mirror the snapshots: ``raw`` vectors, ``zscore`` (``snapshots.transform``
fit on the evaluated vectors), and ``blocks:w1,...,w5``, z-scored and then each block of
``dim / 5`` dimensions multiplied by its weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from snapshots.transform import ZScore

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def transform(vectors: npt.ArrayLike, space: str, *, n_blocks: int = 5) -> F64:
    """Map vectors into a retrieval space.

    Args:
        vectors: ``(n, dim)`` vectors.
        space: ``raw``, ``zscore`` or ``blocks:w1,...,wB`` (``B`` = ``n_blocks`` weights).
        n_blocks: Equal-width blocks the vector consists of, for ``blocks:``.

    Returns:
        The transformed ``(n, dim)`` vectors, float64.

    Raises:
        ValueError: An unknown space or a wrong number of weights.
    """
    data = np.asarray(vectors, dtype=np.float32)
    if space == "raw":
        return data.astype(np.float64)
    scored = ZScore.fit(data).apply(data).astype(np.float64)
    if space == "zscore":
        return scored
    if space.startswith("blocks:"):
        weights = [float(w) for w in space.removeprefix("blocks:").split(",")]
        if len(weights) != n_blocks or data.shape[1] % n_blocks:
            msg = f"{space!r}: need {n_blocks} weights for {data.shape[1]} dimensions"
            raise ValueError(msg)
        return np.asarray(scored * np.repeat(weights, data.shape[1] // n_blocks), dtype=np.float64)
    msg = f"unknown space {space!r}; expected raw, zscore or blocks:w1,...,w{n_blocks}"
    raise ValueError(msg)


def similarity(vectors: npt.ArrayLike) -> F64:
    """Cosine similarity of every pair of rows; a zero row is similar to nothing (0)."""
    data = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    unit = np.divide(data, norms, out=np.zeros_like(data), where=norms > 0)
    return np.asarray(unit @ unit.T)


def rankings(vectors: npt.ArrayLike, groups: Sequence[str] | None = None) -> list[list[int]]:
    """Per query, its candidates (other items outside its group), most similar first.

    Ties keep index order, so results are deterministic.
    """
    sims = similarity(vectors)
    n = sims.shape[0]
    group = list(groups) if groups is not None else [str(i) for i in range(n)]
    ranked = []
    for query in range(n):
        order = np.argsort(-sims[query], kind="stable")
        ranked.append([int(j) for j in order if j != query and group[j] != group[query]])
    return ranked


@dataclass(frozen=True)
class PerQuery:
    """Per-query scores of the queries that have at least one relevant candidate.

    Attributes:
        queries: Indices of those queries.
        precision: Their precision@k (over ``min(k, candidates)``).
        average_precision: Their average precision over the full ranking.
        chance: Their expected precision under a random ranking (relevant / candidates).
    """

    queries: npt.NDArray[np.int64]
    precision: F64
    average_precision: F64
    chance: F64


def per_query(
    vectors: npt.ArrayLike, labels: Sequence[str], k: int, groups: Sequence[str] | None = None
) -> PerQuery:
    """Precision@k and average precision of every query that has a relevant candidate."""
    if k < 1:
        msg = f"k must be >= 1, got {k}"
        raise ValueError(msg)
    kept, precision, average, chance = [], [], [], []
    for query, candidates in enumerate(rankings(vectors, groups)):
        relevant = np.array([labels[j] == labels[query] for j in candidates], dtype=bool)
        if not relevant.any():
            continue
        hits = np.cumsum(relevant)
        ranks = np.flatnonzero(relevant) + 1
        kept.append(query)
        depth = min(k, len(candidates))
        precision.append(hits[depth - 1] / depth)
        average.append(float(np.mean(hits[ranks - 1] / ranks)))
        chance.append(relevant.mean())
    return PerQuery(
        np.asarray(kept, dtype=np.int64),
        np.asarray(precision, dtype=np.float64),
        np.asarray(average, dtype=np.float64),
        np.asarray(chance, dtype=np.float64),
    )


@dataclass(frozen=True)
class Estimate:
    """A mean over queries with its bootstrap interval."""

    mean: float
    low: float
    high: float


def bootstrap(
    values: npt.ArrayLike, resamples: int, *, level: float = 0.95, seed: int = 0
) -> Estimate:
    """The mean of per-query ``values`` and a percentile bootstrap interval over queries.

    Args:
        values: One score per query.
        resamples: Bootstrap resamples (queries drawn with replacement); 0 gives the mean only.
        level: Coverage of the interval.
        seed: Seed of the resampling, so that reruns print the same interval.

    Returns:
        The mean and the interval's ends (both the mean when ``resamples`` is 0).
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        msg = "no queries to average"
        raise ValueError(msg)
    mean = float(data.mean())
    if resamples == 0:
        return Estimate(mean, mean, mean)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Estimate(mean, float(low), float(high))


def nearest(
    vectors: npt.ArrayLike, query: int, count: int, groups: Sequence[str] | None = None
) -> list[int]:
    """The ``count`` nearest candidates of item ``query``, nearest first."""
    return rankings(vectors, groups)[query][:count]
