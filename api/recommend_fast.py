"""One-seed queries by id answered from the snapshot's stored neighbour list, in O(k).

Reads a :class:`ServingView`: the seed's stored list (or, with a tag filter, the rows carrying
the tags, scored exactly), the fresh segment, the vectors of the candidates and the metadata of
the few rows that need it; writes nothing.

:func:`answer_by_list` gives exactly what :func:`api.recommendations.recommend` gives for the
same query (same results, order, copies and short reason), or ``None`` when it cannot be sure,
and the caller runs the engine. The engine reads candidates best first until the k-th group of
copies scores more than ``COPY_WINDOW`` above the next candidate; this module runs the same
loop over the stored list, with the checks done for all candidates at once (one matrix product
for the copies by vector, a precomputed map for copies by ISRC or digest). When the list ends
before that point, the answer stands only if no track beyond it can join a group shown: the
groups' members have no ISRC or digest copy elsewhere and their first members no neighbour at
cosine >= ``DUPLICATE_COSINE`` outside the candidates (their own stored lists say so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from api.recommend_plain import query_vector
from api.recommendations import (
    COPY_WINDOW,
    DUPLICATE_COSINE,
    MIN_FETCH,
    WIDEN_FACTOR,
    Filters,
    Query,
    Recommendations,
    Result,
    best_known,
)
from snapshots.fresh import FRESH_ROW_BASE, FreshState
from snapshots.index import F32, TrackInfo, unit
from snapshots.serving import CHEAP_FRESH, ServingView, merge_by_score
from snapshots.tag_query import FIRST_CELL_ROWS, TAG_ROW_BUDGET, WHOLE_TAG_ROWS

#: A tag subset up to this share of the catalogue is scored whole; beyond, it is visited by
#: cell (or, in a snapshot without cells, most candidates of an ANN search carry the tag and the
#: engine's search answers quickly).
EXACT_TAG_SHARE = 0.1
#: Rows scored exactly before the work is worth a worker thread (about a millisecond).
LOOP_ROWS = 8192
#: Candidates are prepared (vectors, copies by vector) this many at a time.
_BLOCK = 64
#: Candidates of a common tag read (best first, by cell) before the answer stands without the
#: engine's stopping point (at least the first round's ``4k + _BLOCK``). Past the k-th group
#: the engine reads on only to collapse copies into the groups shown; where a recording's
#: variations crowd (thousands within the copy window), that reading, not the scoring, is what
#: a tag query costs. Past it the results, their order and scores stay the exact ones; only
#: the copies beyond the candidates read are not collapsed into them (``duplicates``, and the
#: copy shown for a group).
TAG_READ_ROWS = 512
#: Up to this many candidates (a stored list), all are prepared at once and read without the
#: loop when nothing but the blocked tracks applies; more (a tag's rows) are read as needed.
_PLAIN_MAX = 4 * _BLOCK


@dataclass(frozen=True)
class Plan:
    """Where a query's candidates come from: whether the fast path applies and its cost."""

    seed_row: int
    #: The rows of each of the query's tags (none: the stored list is the source), as mapped.
    tagged: tuple[npt.NDArray[np.int32], ...] = ()
    #: The tags are common: their rows by cell, best cells first, when the snapshot has them;
    #: else the engine's own rounds of index search, with the tags checked on all candidates
    #: at once (rather than their rows, too many to score exactly).
    search: bool = False
    #: Rows of a common tag scored at most (by cell, best first) before the best of them
    #: stand for all (see ``_celled``).
    budget: int = 0
    #: Candidates of a common tag read at most before the answer stands (see ``_celled``).
    reads: int = TAG_READ_ROWS

    @property
    def on_loop(self) -> bool:
        """Whether the work is small enough for the event loop (a list, or a few tag rows)."""
        return not self.search and sum(len(t) for t in self.tagged) <= LOOP_ROWS

    def subset(self) -> npt.NDArray[np.int64] | None:
        """The rows carrying one of the tags, sorted (``None`` without tags)."""
        if not self.tagged:
            return None
        if len(self.tagged) == 1:
            return self.tagged[0].astype(np.int64)
        return np.unique(np.concatenate(self.tagged).astype(np.int64))


def plan(
    view: ServingView,
    query: Query,
    exact_share: float = EXACT_TAG_SHARE,
    budget: int | None = None,
    reads: int = TAG_READ_ROWS,
) -> Plan | None:
    """How the fast path would answer ``query``, or ``None`` when only the engine can.

    Args:
        view: What the node serves.
        query: The request.
        exact_share: Largest share of the catalogue a tag filter's rows may hold for them to
            be scored whole here.
        budget: Rows of a common tag scored at most (default :data:`TAG_ROW_BUDGET`).
        reads: Candidates of a common tag read at most (see :data:`TAG_READ_ROWS`).
    """
    row = _seed_row(view, query)
    snapshot = view.snapshot
    if row is None:
        return None
    tags = query.filters.tags
    if not tags:
        # Only this plan reads the stored list; below the recall target it is searched
        # instead (see search_plan). A tag's rows are scored exactly, whatever the lists.
        return Plan(row) if snapshot.lists_meet_target else None
    # Nothing is copied here (this runs on the event loop); the sum bounds the union.
    parts = tuple(snapshot.tagged_rows(t) for t in sorted(tags))
    count = sum(len(p) for p in parts)
    whole = exact_share * len(snapshot)
    if snapshot.tag_cells is not None:
        whole = min(whole, WHOLE_TAG_ROWS)
    budget = TAG_ROW_BUDGET if budget is None else budget
    return Plan(row, parts, search=count > whole, budget=budget, reads=reads)


def search_plan(view: ServingView, query: Query) -> Plan | None:
    """A plan for :func:`answer_by_search`: any query :func:`plan` takes, without tags.

    Whatever the stored lists: those below the recall target are not read by it either.
    """
    row = _seed_row(view, query)
    return None if row is None or query.filters.tags else Plan(row)


def _seed_row(view: ServingView, query: Query) -> int | None:
    """The row of the one seed of a query the fast paths take, or ``None``."""
    if len(query.seeds) != 1 or query.negative or query.diversity > 0 or query.k < 1:
        return None
    seed, weight = query.seeds[0]
    if not (np.isfinite(weight) and weight > 0):
        return None
    if len(view.fresh.state) > CHEAP_FRESH:
        return None
    return view.snapshot.row_of(seed)


def answer_by_list(view: ServingView, query: Query, how: Plan) -> Recommendations | None:
    """The engine's answer to ``query`` from the stored list (see the module docstring).

    Returns:
        The answer, or ``None`` when the list cannot settle it.
    """
    snapshot = view.snapshot
    state = view.fresh.state
    fresh_seed, blocked, fetch = _start(view, query, how)
    # The snapshot's rows are scored against the query vector normalised once more, as
    # ``ServingView.nearest`` scores them (see ``_start``).
    seed = unit(fresh_seed)
    k, filters = query.k, query.filters
    total = len(snapshot) + len(state)
    if how.search and snapshot.tag_cells is not None:
        return _celled(view, state, query, how, (seed, fresh_seed), blocked)
    subset = how.subset()
    if how.search and subset is not None:
        return _searched(view, state, query, subset, fresh_seed, blocked, fetch)
    if subset is None:
        found = _listed(view, state, how.seed_row, seed, fresh_seed)
    else:
        found = _subset(view, state, subset, how.seed_row, seed, fresh_seed)
        found = _carrying(state, found, filters.tags)
    if found is None:
        return None
    keys, scores, complete, vectors = found
    while True:
        # The engine's round reads the ``fetch`` nearest tracks, the seed among them.
        limit = fetch - 1 if subset is None else len(keys)
        certify = limit > len(keys) and not complete
        scan = _Scan(view, state, (keys[:limit], scores, vectors), blocked, filters)
        chosen, stopped, last = scan.run(k)
        if len(chosen) >= k:
            if certify and not stopped and not scan.settled(last):
                return None
            return Recommendations(chosen, fetch, None)
        if certify:
            return None
        if fetch >= total or subset is not None:
            return _short(chosen, scan, fetch, total, filters)
        fetch = min(total, fetch * WIDEN_FACTOR)


def answer_by_search(view: ServingView, query: Query, how: Plan) -> Recommendations:
    """The engine's answer to a one-seed query by id that the stored list could not settle.

    The engine's own rounds of index search (see :func:`_searched`), read as the stored list
    is read: copies and the blocked tracks checked a block of candidates at a time, metadata
    decoded only for the candidates that need it. Where copies crowd a seed's neighbourhood,
    the engine reads hundreds of candidates one at a time; this reads them in blocks. It
    searches, so it runs off the event loop.
    """
    fresh_seed, blocked, fetch = _start(view, query, how)
    return _searched(view, view.fresh.state, query, how.subset(), fresh_seed, blocked, fetch)


def _start(view: ServingView, query: Query, how: Plan) -> tuple[F32, _Blocked, int]:
    """What the engine starts a one-seed query with: its query vector, blocked tracks, fetch.

    The query vector is the engine's bit for bit (``ServingView.nearest`` scores fresh tracks
    with it, the snapshot's rows with it normalised once more), so scores and the order of
    ties match; the fetch is the engine's first round.
    """
    snapshot = view.snapshot
    state = view.fresh.state
    fresh_seed = unit(query_vector(snapshot.row_vector(how.seed_row), query.seeds[0][1]))
    blocked = _Blocked(view, state, how.seed_row, query.filters)
    total = len(snapshot) + len(state)
    return fresh_seed, blocked, min(total, max(query.k * WIDEN_FACTOR, query.k + 2, MIN_FETCH))


def _short(
    chosen: list[Result], scan: _Scan, fetch: int, total: int, filters: Filters
) -> Recommendations:
    """A short answer, with the engine's reason."""
    capped = len(scan.groups) > len(chosen)
    reason = (
        f"only {len(chosen)} of the {total} tracks in the snapshot pass the filters"
        + (f" with at most {filters.max_per_artist} per artist" if capped else "")
        + (", counting each recording once" if filters.collapse_duplicates else "")
    )
    return Recommendations(chosen, fetch, reason)


def _searched(
    view: ServingView,
    state: FreshState,
    query: Query,
    subset: npt.NDArray[np.int64] | None,
    fresh_seed: F32,
    blocked: _Blocked,
    fetch: int,
) -> Recommendations:
    """The engine's rounds of search, the tags (if any) checked for all candidates at once.

    Each round asks the index and the fresh segment for the ``fetch`` nearest tracks exactly
    as ``ServingView.nearest`` does, keeps those carrying a tag (the rows of ``subset``, when
    the query has tags) and reads them as the engine does; the answer is the engine's,
    without its reading of every candidate's vector and metadata one at a time.
    """
    snapshot = view.snapshot
    k, filters = query.k, query.filters
    total = len(snapshot) + len(state)
    while True:
        pairs = snapshot.nearest_rows(fresh_seed, fetch)
        fresh = state.search(fresh_seed, fetch)
        merged = merge_by_score(pairs, fresh, fetch)
        keys = [
            item if isinstance(item, int) else FRESH_ROW_BASE + state.rows[item.track_id]
            for item, _ in merged
        ]
        scores = [score for _, score in merged]
        found = _carrying(state, (keys, scores, True, None), filters.tags, subset)
        scan = _Scan(view, state, (found[0], found[1], None), blocked, filters)
        chosen, _, _ = scan.run(k)
        if len(chosen) >= k:
            return Recommendations(chosen, fetch, None)
        if fetch >= total:
            return _short(chosen, scan, fetch, total, filters)
        fetch = min(total, fetch * WIDEN_FACTOR)


def _celled(
    view: ServingView,
    state: FreshState,
    query: Query,
    how: Plan,
    seeds: tuple[F32, F32],
    blocked: _Blocked,
) -> Recommendations | None:
    """The tags' rows read best first by cell (``snapshots.tag_cells``), as the engine reads.

    The engine, reading the whole catalogue, meets the tagged rows best first; the rows scored
    above the best bound of the cells not visited yet are the first of them, in order, so the
    engine's loop is run over those and answers when it stops within them. Otherwise more cells
    are visited (or more of the rows scored are read), until it stops or every cell is read:
    the engine's answer over the tag's rows, exactly.

    Past ``how.budget`` rows scored the rows scored stand for the tag's: the answer is the best
    of them, approximate (the cells left are the least promising by their bounds). ``None``
    when those rows give fewer than ``k`` results: the engine answers. Past ``how.reads``
    candidates read, the groups made of them answer: the same results, order and scores, but
    the copies beyond them are neither listed nor shown in a group's place.
    """
    snapshot = view.snapshot
    cells = snapshot.tag_cells
    assert cells is not None  # checked by the caller
    seed, fresh_seed = seeds
    k, filters = query.k, query.filters
    total = len(snapshot) + len(state)
    walk = cells.walk(sorted(filters.tags), seed)
    rows = np.empty(0, dtype=np.int64)
    scores = np.empty(0, dtype=np.float32)
    fresh_keys = np.arange(len(state), dtype=np.int64) + FRESH_ROW_BASE
    fresh_scores = state.vectors @ fresh_seed if len(state) else np.empty(0, np.float32)
    several = len(filters.tags) > 1
    wanted = FIRST_CELL_ROWS
    cap = max(how.reads, 4 * k + _BLOCK)
    capped = False  # whether the first ``cap`` candidates were read and gave fewer than k
    while True:
        found = walk.more(min(wanted, how.budget - walk.scored))
        found = found[found != how.seed_row]
        if len(found):
            rows = np.concatenate([rows, found])
            scores = np.concatenate([scores, snapshot.rows_vectors(found) @ seed])
            if several:  # a row carrying two of the tags is in both tags' cells
                rows, first = np.unique(rows, return_index=True)
                scores = scores[first]
        wanted = walk.scored
        spent = not walk.done and walk.scored >= how.budget
        # Within the bound first; past the budget, every row scored if the bound did not settle.
        for bound in (walk.bound, -np.inf) if spent else (walk.bound,):
            above = np.flatnonzero(scores > bound)
            read = 4 * k + _BLOCK
            while True:
                # Read at most ``read`` rows: those above the (read + 1)-th score, whose order
                # is settled (rows of that very score wait for the next round, with their ties).
                cut = bound
                picked = above
                if len(above) > read:
                    part = np.argpartition(-scores[above], read)[: read + 1]
                    cut = max(cut, float(scores[above[part]].min()))
                    picked = above[scores[above] > cut]
                picked = picked[np.lexsort((rows[picked], -scores[picked]))]
                inside = fresh_scores > cut
                merged = _merged(
                    rows[picked], scores[picked], fresh_keys[inside], fresh_scores[inside], True
                )
                keys, key_scores, _, _ = _carrying(state, merged, filters.tags)
                if len(keys) >= cap and not capped:
                    # Every other row scores lower than these: the engine's first k groups are
                    # among them, and they are the answer whether its stopping point is within
                    # them or not (see TAG_READ_ROWS).
                    head = (keys[:cap], key_scores[:cap], None)
                    chosen, _, _ = _Scan(view, state, head, blocked, filters).run(k)
                    if len(chosen) >= k:
                        return Recommendations(chosen, walk.scored, None)
                    capped = True  # copies fill them: read on, as the engine does
                last = bound == -np.inf and len(picked) == len(above)
                # The engine stops only below its k-th group's score less the copy window, and
                # that group scores at most the k-th candidate: else the scan cannot settle.
                if last or (len(keys) >= k and key_scores[k - 1] - cut > COPY_WINDOW):
                    scan = _Scan(view, state, (keys, key_scores, None), blocked, filters)
                    chosen, stopped, _ = scan.run(k)
                    # Every row not read scores ``cut`` or less: the engine stops where the
                    # rows read end if it stops at the next one, whatever it is.
                    if stopped or (len(chosen) >= k and scan.stops_before(cut)):
                        return Recommendations(chosen, walk.scored, None)
                    if last and len(chosen) >= k:
                        return Recommendations(chosen, walk.scored, None)
                    if last:
                        return None if spent else _short(chosen, scan, walk.scored, total, filters)
                if len(picked) == len(above):
                    break  # every row scored above the bound was read: visit more cells
                read *= 4


def _carrying(
    state: FreshState,
    found: Found,
    tags: frozenset[str],
    subset: npt.NDArray[np.int64] | None = None,
) -> Found:
    """The candidates that carry one of ``tags``.

    Snapshot rows carry them when in ``subset`` (all of them when it is ``None``), fresh tracks
    by their own tags. The others never pass the filter, so the engine's reading of the rest
    is the same without them.
    """
    keys, scores, complete, vectors = found
    if not tags:
        return found
    keyed = np.asarray(keys, dtype=np.int64)
    fresh = keyed >= FRESH_ROW_BASE
    keep = np.ones(len(keyed), dtype=bool)
    if subset is not None and len(subset):
        at = np.minimum(np.searchsorted(subset, keyed), len(subset) - 1)
        keep = subset[at] == keyed
    elif subset is not None:
        keep[:] = False
    for i in np.flatnonzero(fresh).tolist():
        info = state.infos[keys[i] - FRESH_ROW_BASE]
        keep[i] = any(name.casefold() in tags for name, _ in info.tags)
    if bool(keep.all()):
        return found
    chosen = np.flatnonzero(keep).tolist()
    return (
        [keys[i] for i in chosen],
        [scores[i] for i in chosen],
        complete,
        None if vectors is None else vectors[keep],
    )


#: Candidates best first: keys (snapshot rows, fresh rows from ``FRESH_ROW_BASE``), scores,
#: whether they are every other track, and their vectors when at hand.
Found = tuple[list[int], list[float], bool, F32 | None]


def _listed(
    view: ServingView, state: FreshState, row: int, seed: F32, fresh_seed: F32
) -> Found | None:
    """The stored list merged with the fresh tracks that rank inside it, and whether it is all."""
    snapshot = view.snapshot
    listed, _ = snapshot.stored_list(row)
    rows = listed[listed >= 0].astype(np.int64)
    complete = len(rows) >= len(snapshot) - 1
    # Scored again as the engine scores its candidates, and ties ordered by row as its search
    # orders them, so even copies of equal score come in the engine's order.
    vectors = snapshot.rows_vectors(rows)
    scores = vectors @ seed
    order = np.lexsort((rows, -scores))
    rows, scores, vectors = rows[order], scores[order], vectors[order]
    if not len(state):
        return rows.tolist(), scores.tolist(), complete, vectors
    fresh_scores = state.vectors @ fresh_seed
    fresh_keys = np.arange(len(state), dtype=np.int64) + FRESH_ROW_BASE
    if not complete:
        # Below the list's last score, snapshot tracks outside the list may come first.
        inside = fresh_scores >= (scores[-1] if len(scores) else np.inf)
        fresh_keys, fresh_scores = fresh_keys[inside], fresh_scores[inside]
    return _merged(rows, scores, fresh_keys, fresh_scores, complete)


def _subset(
    view: ServingView,
    state: FreshState,
    subset: npt.NDArray[np.int64],
    row: int,
    seed: F32,
    fresh_seed: F32,
) -> Found:
    """Every row of the subset and every fresh track, best first: the filter's whole pool.

    The other rows never pass the filter, so the engine, reading the whole catalogue, meets
    exactly these candidates in this order.
    """
    rows = subset[subset != row]
    scores = view.snapshot.rows_vectors(rows) @ seed if len(rows) else np.empty(0, np.float32)
    # Stable order of ties (by row), as the exact re-ranking of the engine's search.
    order = np.lexsort((rows, -scores))
    rows, scores = rows[order], scores[order]
    fresh_keys = np.arange(len(state), dtype=np.int64) + FRESH_ROW_BASE
    fresh_scores = state.vectors @ fresh_seed if len(state) else np.empty(0, np.float32)
    return _merged(rows, scores, fresh_keys, fresh_scores, True)


def _merged(
    rows: npt.NDArray[np.int64],
    scores: F32,
    fresh_keys: npt.NDArray[np.int64],
    fresh_scores: F32,
    complete: bool,
) -> Found:
    if not len(fresh_keys):
        return rows.tolist(), scores.tolist(), complete, None
    keys = np.concatenate([rows, fresh_keys])
    merged = np.concatenate([scores, fresh_scores.astype(np.float32)])
    order = np.argsort(-merged, kind="stable")  # snapshot tracks first on ties, as the engine
    return keys[order].tolist(), merged[order].tolist(), complete, None


class _Blocked:
    """The seed and the excluded tracks, and (when copies collapse) every copy of them."""

    def __init__(
        self, view: ServingView, state: FreshState, seed_row: int, filters: Filters
    ) -> None:
        snapshot = view.snapshot
        keys = [seed_row]
        for track_id in filters.exclude_tracks:
            row = snapshot.row_of(track_id)
            if row is not None:
                keys.append(row)
            elif track_id in state.rows:
                keys.append(FRESH_ROW_BASE + state.rows[track_id])
        keys = list(dict.fromkeys(keys))
        self.keys = frozenset(keys)
        self.copies: frozenset[int] = frozenset()
        self.vectors: F32 | None = None
        if filters.collapse_duplicates:
            shared = snapshot.copies()
            self.copies = frozenset(c for key in keys for c in shared.get(key, ()))
            self.vectors = _vectors(view, state, keys)


def _vectors(view: ServingView, state: FreshState, keys: Sequence[int]) -> F32:
    """Vectors of candidate keys (snapshot rows, or fresh rows from ``FRESH_ROW_BASE``)."""
    keyed = np.asarray(keys, dtype=np.int64)
    fresh = keyed >= FRESH_ROW_BASE
    if not fresh.any():
        return view.snapshot.rows_vectors(keyed)
    out = np.empty((len(keyed), view.snapshot.manifest.dim), dtype=np.float32)
    out[~fresh] = view.snapshot.rows_vectors(keyed[~fresh])
    out[fresh] = state.vectors[keyed[fresh] - FRESH_ROW_BASE]
    return out


class _Scan:
    """The engine's reading loop over a fixed list of candidates (see ``recommendations``).

    Candidates are prepared in blocks as the loop reaches them: their vectors, whether they
    are copies by vector of a blocked track, and which earlier candidates (within the copy
    window of them) are copies by vector of them, each one matrix product per block.
    """

    def __init__(
        self,
        view: ServingView,
        state: FreshState,
        candidates: tuple[list[int], list[float], F32 | None],
        blocked: _Blocked,
        filters: Filters,
    ) -> None:
        self.view = view
        self.state = state
        self.keys, self.scores, given = candidates
        self.filters = filters
        self.blocked = blocked
        self.collapse = filters.collapse_duplicates
        self.shared = view.snapshot.copies() if self.collapse else {}
        count = len(self.keys)
        self.given = given is not None and len(given) >= count
        self.vectors: F32 = (
            given
            if given is not None and self.given
            else np.empty((count, view.snapshot.manifest.dim), dtype=np.float32)
        )
        self.lowered = -np.asarray(self.scores, dtype=np.float64)
        #: For each candidate with an earlier one at cosine >= DUPLICATE_COSINE among those it
        #: was compared with (see :meth:`prepare`): those candidates, ascending, and which are.
        self.close: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]] = {}
        self.blocked_near: list[bool] = []
        self.ready = 0
        # The candidates carry the tags already (see ``_carrying``): other filters need rows.
        self.meta = bool(filters.exclude_artists or filters.exclude_albums or filters.not_tags)
        #: Groups of copies: the candidate indices of the members, first member first.
        self.groups: list[list[int]] = []
        self.group_scores: list[float] = []
        #: Per group, the candidate that is its first member (ascending, as groups are made).
        self.founders = np.zeros(count, dtype=np.int64)
        self.by_isrc: dict[str, int] = {}
        self.by_digest: dict[str, int] = {}
        self.infos: dict[int, TrackInfo] = {}
        #: Groups the engine's stopping rule counted when :meth:`run` returned.
        self.needed = 0

    def prepare(self, upto: int) -> None:
        """Prepare the candidates up to ``upto`` (and the rest of their block).

        Called when every candidate before the block is read (its groups are known).
        """
        begin = self.ready
        end = min(len(self.keys), max(upto, begin + _BLOCK))
        if end <= begin:
            return
        if not self.given:
            self.vectors[begin:end] = _vectors(self.view, self.state, self.keys[begin:end])
        self.ready = end
        if not self.collapse:
            return
        block = self.vectors[begin:end]
        if self.blocked.vectors is not None:
            near = (block @ self.blocked.vectors.T).max(axis=1) >= DUPLICATE_COSINE
            self.blocked_near.extend(near.tolist())
        # A candidate joins a group through the group's first member, so it is compared with
        # the first members of the groups made before the block within the copy window above
        # it, and with the block's earlier candidates (which may become first members): as
        # the engine compares, and far fewer than every earlier candidate where copies crowd.
        low = int(np.searchsorted(self.lowered, self.lowered[begin] - COPY_WINDOW))
        firsts = self.founders[: len(self.groups)]
        firsts = firsts[firsts >= low]
        if len(firsts) == begin - low:  # every candidate in the window began a group: a slice
            columns = np.arange(low, end)
            against = self.vectors[low:end]
        else:
            columns = np.concatenate([firsts, np.arange(begin, end)])
            against = self.vectors[columns]
        same = block @ against.T >= DUPLICATE_COSINE
        same &= columns[None, :] < np.arange(begin, end)[:, None]
        # A row of flags per candidate that has a copy among them, not a list of pairs: every
        # pair of a block of near-copies of one recording can be copies.
        for i in np.flatnonzero(same.any(axis=1)).tolist():
            self.close[begin + i] = (columns, same[i])

    def info(self, at: int) -> TrackInfo:
        found = self.infos.get(at)
        if found is None:
            key = self.keys[at]
            if key >= FRESH_ROW_BASE:
                found = self.state.infos[key - FRESH_ROW_BASE]
            else:
                found = self.view.snapshot.info(key)
            self.infos[at] = found
        return found

    def run(self, k: int) -> tuple[list[Result], bool, int]:
        """Read until the engine would stop with k chosen, or to the end of the candidates.

        Returns:
            The chosen results, whether the engine's stopping point was reached, and the index
            of the group of the last result chosen.
        """
        needed = k
        at = 0
        window = 0
        keys, scores, groups, group_scores = self.keys, self.scores, self.groups, self.group_scores
        count = len(keys)
        blocked_keys, blocked_copies = self.blocked.keys, self.blocked.copies
        near = self.blocked_near
        collapse, shared, close, founders = self.collapse, self.shared, self.close, self.founders
        by_isrc, by_digest = self.by_isrc, self.by_digest
        filters = self.filters if self.meta else None
        if filters is None and self.filters.max_per_artist is None and count <= _PLAIN_MAX:
            plain = self._plain(k)
            if plain is not None:
                self.needed = k
                return plain
        while True:
            stopped = False
            while at < count:
                if at >= self.ready:
                    self.prepare(at + 1)
                score = scores[at]
                if len(groups) >= needed and group_scores[needed - 1] - score > COPY_WINDOW:
                    stopped = True
                    break
                key = keys[at]
                if key in blocked_keys or (
                    collapse and (key in blocked_copies or (near and near[at]))
                ):
                    at += 1
                    continue
                if filters is not None and not filters.admits(self.info(at)):
                    at += 1
                    continue
                group = -1
                # Only a row with a copy elsewhere can join a group by ISRC or digest.
                track = self.info(at) if collapse and key in shared else None
                if track is not None:
                    if track.isrc and track.isrc in by_isrc:
                        group = by_isrc[track.isrc]
                    elif track.audio_sha256 and track.audio_sha256 in by_digest:
                        group = by_digest[track.audio_sha256]
                if group < 0 and collapse:
                    while window < len(groups) and group_scores[window] - score > COPY_WINDOW:
                        window += 1
                    near_at = close.get(at)
                    if near_at is not None and window < len(groups):
                        # The first group from ``window`` on whose first member is a copy.
                        columns, copies_of = near_at
                        firsts = founders[window : len(groups)]
                        where = np.minimum(np.searchsorted(columns, firsts), len(columns) - 1)
                        hits = (columns[where] == firsts) & copies_of[where]
                        if hits.any():
                            group = window + int(np.argmax(hits))
                if group < 0:
                    group = len(groups)
                    groups.append([at])
                    group_scores.append(score)
                    founders[group] = at
                else:
                    groups[group].append(at)
                if track is not None:
                    if track.isrc:
                        by_isrc.setdefault(track.isrc, group)
                    if track.audio_sha256:
                        by_digest.setdefault(track.audio_sha256, group)
                at += 1
            chosen, last = self._select(k)
            if len(chosen) >= k or not stopped:
                self.needed = needed
                return chosen, stopped, last
            needed *= 2

    def stops_before(self, score: float) -> bool:
        """Whether, after these candidates, the engine stops at any scoring ``score`` or less."""
        needed = self.needed
        return 0 < needed <= len(self.group_scores) and (
            self.group_scores[needed - 1] - score > COPY_WINDOW
        )

    def _plain(self, k: int) -> tuple[list[Result], bool, int] | None:
        """:meth:`run` when every eligible candidate is a group of its own, without the loop.

        So it is when no candidate is a copy by vector of an earlier one or has a copy by
        ISRC or digest, and no filter but the blocked tracks applies: the common case.
        """
        self.prepare(len(self.keys))
        keys, scores = self.keys, self.scores
        if self.collapse and (self.close or (self.shared and any(k in self.shared for k in keys))):
            return None
        blocked_keys = self.blocked.keys
        if self.collapse:
            copies, near = self.blocked.copies, self.blocked_near
            eligible = [
                at
                for at, key in enumerate(keys)
                if not (key in blocked_keys or key in copies or (near and near[at]))
            ]
        else:
            eligible = [at for at, key in enumerate(keys) if key not in blocked_keys]
        stopped = False
        if len(eligible) >= k:
            kth = scores[eligible[k - 1]]
            for score in scores[eligible[k - 1] + 1 :]:
                if kth - score > COPY_WINDOW:
                    stopped = True
                    break
            eligible = eligible[:k]
        self.groups = [[at] for at in eligible]
        self.group_scores = [scores[at] for at in eligible]
        chosen = [Result(self.info(at), scores[at]) for at in eligible]
        return chosen, stopped, len(chosen) - 1

    def _select(self, k: int) -> tuple[list[Result], int]:
        """The engine's pick in relevance order under the per-artist cap (diversity 0)."""
        cap = self.filters.max_per_artist
        counts: dict[str, int] = {}
        chosen: list[Result] = []
        last = -1
        for g, members in enumerate(self.groups):
            if len(chosen) == k:
                break
            result = self._result(g, members)
            if cap is not None:
                track = result.track
                if not all(counts.get(a.casefold(), 0) < cap for a in track.artists):
                    continue
                for a in {a.casefold() for a in track.artists}:
                    counts[a] = counts.get(a, 0) + 1
            chosen.append(result)
            last = g
        return chosen, last

    def _result(self, g: int, members: list[int]) -> Result:
        score = self.group_scores[g]
        if len(members) == 1:
            return Result(self.info(members[0]), score)
        tracks = [self.info(at) for at in members]
        best = best_known(tracks)
        return Result(best, score, tuple(t.track_id for t in tracks if t is not best))

    def settled(self, last: int) -> bool:
        """Whether no track beyond the candidates can join the groups up to ``last``.

        A track joins a group by sharing an ISRC or digest with a member, or by a cosine of at
        least ``DUPLICATE_COSINE`` with its first member; the copies map and the first members'
        own stored lists (and the fresh segment, scored) tell whether such a track exists
        outside the candidates.
        """
        snapshot = self.view.snapshot
        seen = set(self.keys)
        founders: list[int] = []
        for members in self.groups[: last + 1]:
            for at in members:
                if self.collapse and not self.shared.get(self.keys[at], frozenset()) <= seen:
                    return False
            founder = self.keys[members[0]]
            if founder >= FRESH_ROW_BASE:
                return False  # a fresh track has no stored list to tell its copies
            founders.append(founder)
        if not self.collapse or not founders:
            return True
        tops = snapshot.top_scores(founders)
        for founder, top in zip(founders, tops.tolist(), strict=True):
            if top < DUPLICATE_COSINE:
                continue
            listed, listed_scores = snapshot.stored_list(founder)
            close = listed[(listed_scores >= DUPLICATE_COSINE) & (listed >= 0)].tolist()
            if len(close) == len(listed) or not set(close) <= seen:
                return False
        if len(self.state):
            near = self.state.vectors @ snapshot.rows_vectors(founders).T >= DUPLICATE_COSINE
            outside = np.flatnonzero(near.any(axis=1)) + FRESH_ROW_BASE
            if not set(outside.tolist()) <= seen:
                return False
        return True
