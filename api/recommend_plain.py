"""The commonest query, one seed by id and no filter, answered in a few array operations.

Reads a :class:`ServingView`: the seed's stored list and scores, the rows' plain depths and,
when it holds tracks, the fresh segment's vectors; writes nothing.

The engine reads candidates best first, groups copies (by ISRC, digest or vector) and stops
at the first candidate more than ``COPY_WINDOW`` below the k-th group. When the seed and every
candidate up to that point have no copy anywhere (``LoadedSnapshot.alone``) and every fresh
track scores below that point, each candidate is a group of its own and nothing beyond the
list can join one: the engine's answer is the k best of the stored list. The snapshot works
out per row how far that holds (``LoadedSnapshot.plain_depths``, at warm-up); :func:`plain_rows`
reads it, checks the fresh segment and otherwise leaves the query to
:func:`api.recommend_fast.answer_by_list`. It costs a lookup, no vector arithmetic unless the
fresh segment holds tracks.
"""

from __future__ import annotations

import numpy as np

from snapshots.index import COPY_WINDOW, F32, SCORE_MARGIN, unit
from snapshots.serving import CHEAP_FRESH, ServingView


def query_vector(vector: F32, weight: float) -> F32:
    """``api.recommendations.query_vector`` for one seed, without looking the seed up again."""
    query = (weight * vector.astype(np.float64)) / weight
    unit_query: F32 = (query / np.linalg.norm(query)).astype(np.float32)
    return unit_query


def plain_rows(view: ServingView, row: int, k: int) -> tuple[list[int], list[float]] | None:
    """The engine's answer to one seed ``row`` with default filters, when no copy is involved.

    Read from the seed's stored list and scores as they are: the engine scores the same rows
    against the same vector, normalised again, so scores agree to float rounding.

    Returns:
        The k rows and scores, best first, or ``None`` when copies, the fresh segment or a
        short list may change the answer (the full path decides then).
    """
    snapshot = view.snapshot
    state = view.fresh.state
    # Within the depth, every candidate the engine reads before it stops (all of them when
    # the list ends first) is a copy of nothing: each is a group of its own and the stop is
    # certain. (A copy by vector of one of them is in its stored list, which ``alone`` reads.)
    if k < 1 or snapshot.plain_depth(row) < k or len(state) > CHEAP_FRESH:
        return None
    listed, scores = snapshot.stored_head(row, k)
    if len(state):
        # Scored as the engine scores fresh tracks; one within the window below the k-th
        # would be read.
        fresh_seed = unit(query_vector(snapshot.row_vector(row), 1.0))
        floor = scores[k - 1] - COPY_WINDOW - SCORE_MARGIN
        if float((state.vectors @ fresh_seed).max()) >= floor:
            return None
    return listed, scores
