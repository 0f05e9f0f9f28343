"""The commonest query, one seed by id and no filter, answered in a few array operations.

Reads a :class:`ServingView`: the seed's stored list and scores, the rows' ``alone`` flags
and, when it holds tracks, the fresh segment's vectors; writes nothing.

The engine reads candidates best first, groups copies (by ISRC, digest or vector) and stops
at the first candidate more than ``COPY_WINDOW`` below the k-th group. When the seed and every
candidate up to that point have no copy anywhere (``LoadedSnapshot.alone``) and every fresh
track scores below that point, each candidate is a group of its own and nothing beyond the
list can join one: the engine's answer is the k best of the stored list. :func:`plain_rows`
checks exactly that, with a margin on the thresholds, and otherwise leaves the query to
:func:`api.recommend_fast.answer_by_list`. It costs a few array lookups, no vector arithmetic
unless the fresh segment holds tracks.
"""

from __future__ import annotations

import math

import numpy as np

from api.recommendations import COPY_WINDOW, MIN_FETCH, WIDEN_FACTOR
from snapshots.index import F32
from snapshots.serving import CHEAP_FRESH, ServingView

#: A candidate this close below the engine's stopping score counts as read: stored scores and
#: the engine's may differ in the last bits.
MARGIN = 1e-5


def query_vector(vector: F32, weight: float) -> F32:
    """``api.recommendations.query_vector`` for one seed, without looking the seed up again."""
    query = (weight * vector.astype(np.float64)) / weight
    unit_query: F32 = (query / np.linalg.norm(query)).astype(np.float32)
    return unit_query


def seed_vectors(vector: F32) -> tuple[F32, F32] | None:
    """``unit(query_vector(vector, 1.0))`` and its own ``unit``, bit for bit, in fewer steps.

    The weight 1 changes nothing, and ``np.linalg.norm`` of a vector is the square root of its
    dot product with itself in its own precision, which is what ``unit`` divides by. ``None``
    for a zero vector (``unit`` keeps it zero; it has no neighbours to speak of).
    """
    query = vector.astype(np.float64)
    norm = math.sqrt(query.dot(query))
    if norm == 0:
        return None
    once = (query / norm).astype(np.float32)
    fresh: F32 = once / np.sqrt(once.dot(once))
    stored: F32 = fresh / np.sqrt(fresh.dot(fresh))
    return fresh, stored


def plain_rows(view: ServingView, row: int, k: int) -> tuple[list[int], list[float]] | None:
    """The engine's answer to one seed ``row`` with default filters, when no copy is involved.

    Read from the seed's stored list and scores as they are: the engine scores the same rows
    against the same vector, normalised again, so scores agree to float rounding.

    Returns:
        The k rows and scores, best first, or ``None`` when copies, the fresh segment or a
        short list may change the answer (the full path decides then).
    """
    snapshot = view.snapshot
    alone = snapshot.alone()
    state = view.fresh.state
    if k < 1 or not alone[row] or len(state) > CHEAP_FRESH:
        return None
    listed, scores = snapshot.stored_list(row)
    # The engine reads fetch - 1 candidates at first; a list padded before k is the whole
    # catalogue, short of k: the full path words that answer.
    count = min(len(listed), max(k * WIDEN_FACTOR, k + 2, MIN_FETCH) - 1)
    if count < k or listed[k - 1] < 0:
        return None
    floor = float(scores[k - 1]) - COPY_WINDOW - MARGIN
    # Every candidate the engine reads before it stops (all of them when the list ends first):
    # with none of them a copy of anything (the seed, each other or a track beyond the list),
    # each is a group of its own and the stop is certain. A copy by vector of one of them is
    # in its own stored list, which ``alone`` reads.
    read = listed[: int(np.count_nonzero(scores[:count] >= floor))]
    if not bool(alone[read[read >= 0]].all()):
        return None
    if len(state):
        seeds = seed_vectors(snapshot.row_vector(row))
        if seeds is None or float((state.vectors @ seeds[0]).max()) >= floor:
            return None
    return listed[:k].tolist(), scores[:k].tolist()
