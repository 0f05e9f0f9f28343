"""Each tag's rows grouped by cell, so a tag filter scores only the cells that can matter.

Reads a snapshot folder's ``tagged.npy`` and ``tags.json`` and the builder's cells (to build)
or the ``tag_*`` files (:data:`snapshots.manifest.TAG_CELL_FILES`, to serve); writes the
``tag_*`` files. The rows are grouped by the neighbour lists' cells, ``4 sqrt(n)`` unit centres
(:func:`snapshots.knn.fit_cells`), each row in its nearest cell (or a near-nearest one):

- ``tag_centres.npy``: ``(cells, dim)`` float32 unit centres;
- ``tag_rows.npy``: ``tagged.npy`` with each tag's rows ordered by cell, then row (the spans of
  ``tags.json`` hold for both);
- ``tag_cells.npy``: ``(entries, 3)`` float64, one entry per tag and non-empty cell, in the
  order of ``tag_rows.npy``: the cell, the end of its rows in ``tag_rows.npy``, and the least
  cosine between the centre and those rows.

A tag query (:class:`CellWalk`) scores the centres, visits the tag's cells most similar centre
first, and bounds what the rows of the cells left can score (angles obey the triangle
inequality: a row at angle ``r`` or less from a centre at angle ``a`` from the query is at angle
``a - r`` or more from it). Every row not visited scores at most the best bound left, so the
rows already scored above it are, in order, exactly the tag's best rows: an answer found among
them is exact, and the rows scored are those of the cells visited before the bound fell below
the answer's scores, not the tag's whole list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from snapshots.manifest import (
    TAG_CELLS_NAME,
    TAG_CENTRES_NAME,
    TAG_ROWS_NAME,
    TAGGED_NAME,
    TAGS_NAME,
)

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

#: Added to every bound: a float32 dot product of unit vectors is off by far less.
BOUND_MARGIN = 1e-4


def build_tag_cells(
    folder: Path, centres: F32, cell: npt.NDArray[np.integer[Any]], cosine: F32
) -> None:
    """Write the ``tag_*`` files of the snapshot in ``folder`` from its tag lists and cells.

    Takes the centres, each row's cell and its cosine to the cell's centre, as the builder's
    neighbour-list cells hold them (:func:`snapshots.knn.fit_cells`), so the rows are fitted
    and assigned once. A row's cell need not be its nearest centre: the bounds use each cell's
    own least cosine.
    """
    tagged = np.load(folder / TAGGED_NAME)
    spans = json.loads((folder / TAGS_NAME).read_text(encoding="utf-8"))
    rows = np.empty_like(tagged)
    entries: list[npt.NDArray[np.float64]] = []
    for start, end in sorted(tuple(span) for span in spans.values()):
        if end <= start:
            continue
        members = tagged[start:end].astype(np.int64)
        cells = cell[members]
        order = np.lexsort((members, cells))
        members, cells = members[order], cells[order]
        rows[start:end] = members
        firsts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
        ends = np.r_[firsts[1:], len(members)] + start
        least = np.minimum.reduceat(cosine[members], firsts)
        entries.append(np.column_stack([cells[firsts], ends, least]).astype(np.float64))
    np.save(folder / TAG_CENTRES_NAME, centres)
    np.save(folder / TAG_ROWS_NAME, rows)
    table = np.concatenate(entries) if entries else np.empty((0, 3), dtype=np.float64)
    np.save(folder / TAG_CELLS_NAME, table)


class TagCells:
    """A snapshot's ``tag_*`` files, mapped: per tag its cells and its rows by cell."""

    def __init__(
        self,
        centres: F32,
        rows: npt.NDArray[np.int32],
        table: npt.NDArray[np.float64],
        spans: dict[str, tuple[int, int]],
    ) -> None:
        self.centres = centres
        self.rows = rows
        self.cells = table[:, 0].astype(np.int64)
        self.ends = table[:, 1].astype(np.int64)
        self.starts = np.r_[0, self.ends[:-1]].astype(np.int64)
        self.least = table[:, 2].astype(np.float64)
        self.spans = spans
        # Each entry's start is the previous one's end, but for a tag's first entry.
        for start, end in spans.values():
            if end > start:
                self.starts[int(np.searchsorted(self.ends, start, side="right"))] = start

    @classmethod
    def open(cls, folder: Path, spans: dict[str, tuple[int, int]]) -> TagCells | None:
        """The files of ``folder`` mapped, or ``None`` when the snapshot predates them.

        Raises:
            ValueError: The files disagree with each other or with the tag lists.
        """
        names = (TAG_CENTRES_NAME, TAG_ROWS_NAME, TAG_CELLS_NAME)
        if not all((folder / name).is_file() for name in names):
            return None
        centres = np.asarray(np.load(folder / TAG_CENTRES_NAME, mmap_mode="r"))
        rows = np.asarray(np.load(folder / TAG_ROWS_NAME, mmap_mode="r"))
        table = np.load(folder / TAG_CELLS_NAME)
        total = max((end for _, end in spans.values()), default=0)
        if (
            centres.ndim != 2
            or rows.ndim != 1
            or len(rows) < total
            or table.ndim != 2
            or table.shape[1] != 3
            or (len(table) and not bool(np.all(np.diff(table[:, 1]) > 0)))
            or (len(table) and (table[:, 0].min() < 0 or table[:, 0].max() >= len(centres)))
        ):
            msg = f"{', '.join(names)} disagree with each other or with the tag lists"
            raise ValueError(msg)
        return cls(centres, rows, table, spans)

    def walk(self, tags: Sequence[str], query: F32) -> CellWalk:
        """The cells of ``tags`` for a unit ``query``, best bound first (see :class:`CellWalk`)."""
        picked = []
        for tag in tags:
            start, end = self.spans.get(tag.lower(), (0, 0))
            if end > start:
                first = int(np.searchsorted(self.ends, start, side="right"))
                last = int(np.searchsorted(self.ends, end, side="right"))
                picked.append(np.arange(first, last))
        entries = np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)
        return CellWalk(self, entries, query)


class CellWalk:
    """One query's visit of a tag's cells, most similar centre first, with the bound of the rest.

    Attributes:
        scored: Rows handed out so far.
    """

    def __init__(self, cells: TagCells, entries: I64, query: F32) -> None:
        self._cells = cells
        near = np.clip(cells.centres @ query, -1.0, 1.0).astype(np.float64)
        angle = np.arccos(near[cells.cells[entries]])
        radius = np.arccos(np.clip(cells.least[entries], -1.0, 1.0))
        bound = np.cos(np.maximum(angle - radius, 0.0)) + BOUND_MARGIN
        # Most similar centre first: on 100k clustered rows (with half these cells) the
        # budget-bound answers of the commonest tag recalled 0.99 of the exact ones in this
        # order, 0.89 in the order of the bounds.
        order = np.argsort(-near[cells.cells[entries]], kind="stable")
        self._entries = entries[order]
        # The most any row of the entries from each one on can score.
        self._bounds = np.maximum.accumulate(bound[order][::-1])[::-1]
        self._next = 0
        self.scored = 0

    @property
    def done(self) -> bool:
        """Whether every cell was visited."""
        return self._next >= len(self._entries)

    @property
    def bound(self) -> float:
        """The most any row not handed out yet can score (``-inf`` when none is left)."""
        return float(self._bounds[self._next]) if not self.done else -np.inf

    def more(self, rows: int) -> I64:
        """The rows of the next cells, at least ``rows`` of them when that many are left."""
        cells = self._cells
        entries = self._entries[self._next :]
        lengths = cells.ends[entries] - cells.starts[entries]
        taken = int(np.searchsorted(np.cumsum(lengths), rows)) + 1
        entries, lengths = entries[:taken], lengths[:taken]
        self._next += len(entries)
        # The concatenated ranges [start, end) of the entries, without a loop over them.
        total = int(lengths.sum())
        offsets = np.repeat(cells.starts[entries] - (np.cumsum(lengths) - lengths), lengths)
        found: I64 = cells.rows[np.arange(total, dtype=np.int64) + offsets].astype(np.int64)
        self.scored += total
        return found
