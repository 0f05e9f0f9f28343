"""The k rows of a tag most similar to a vector, scored exactly within a bounded budget.

Reads a snapshot's mapped vectors and its tag cells (:mod:`snapshots.tag_cells`); writes
nothing. The budgets here are shared with ``/recommend``'s tag filter
(:mod:`api.recommend_fast`), which applies the engine's copy rules on top of the same walk.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from snapshots.tag_cells import F32, I64, TagCells

#: A tag's rows scored whole at most (when the snapshot has cells to visit instead): a fixed
#: amount of work, whatever the catalogue's size.
WHOLE_TAG_ROWS = 8192
#: Rows of a common tag scored at most per query (visited by cell, best centre first); past
#: them the answer is the best of the rows scored (approximate).
TAG_ROW_BUDGET = 32_768
#: Rows of the first cells a tag query visits; each further round visits as many again as
#: all before it, so the rounds are few.
FIRST_CELL_ROWS = 256


def best_in_cells(
    cells: TagCells,
    vectors: F32,
    tag: str,
    query: F32,
    k: int,
    *,
    exclude: int | None = None,
    budget: int = TAG_ROW_BUDGET,
) -> list[tuple[int, float]]:
    """The ``k`` best rows carrying ``tag`` for a unit ``query``, best first, with their scores.

    Cells are visited most similar centre first; the answer is exact once its k-th score is
    at least the bound of every cell left, and the best of the rows scored when ``budget``
    rows were scored first.
    """
    walk = cells.walk([tag], query)
    rows = np.empty(0, dtype=np.int64)
    scores = np.empty(0, dtype=np.float32)
    wanted = FIRST_CELL_ROWS
    while not walk.done and walk.scored < budget:
        found = walk.more(min(wanted, budget - walk.scored))
        if exclude is not None:
            found = found[found != exclude]
        rows = np.concatenate([rows, found])
        scores = np.concatenate([scores, vectors[found] @ query])
        if len(rows) > k:
            keep = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[keep], scores[keep]
        if len(rows) >= k and float(scores.min()) >= walk.bound:
            break
        wanted = walk.scored
    return _ordered(rows, scores)


def _ordered(rows: I64, scores: npt.NDArray[np.float32]) -> list[tuple[int, float]]:
    # Best first; ties by row, so the answer does not depend on the order cells were read.
    order = np.lexsort((rows, -scores))
    return [(int(rows[i]), float(scores[i])) for i in order]
