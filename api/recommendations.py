"""The ranking engine: seeds, negatives, widening search, filters, dedup, caps and MMR.

Weighted seeds minus negatives give the query vector; the candidate search widens in bounded
steps; filters, one copy of each recording, per-artist caps and maximal marginal relevance shape
the list. Reads a snapshot only through the query node's read interface (``get``, ``nearest``,
``vector``, ``__len__``: see :class:`Catalogue`); writes nothing. Plain functions, so they are
tested on a real snapshot without a server; ``api.recommend_views`` turns HTTP into
:class:`Query` and results into JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from snapshots.index import COPY_COSINE, Neighbour, TrackInfo
from snapshots.index import COPY_WINDOW as COPY_WINDOW

F32 = npt.NDArray[np.float32]

#: Vectors at least this close (cosine) are one recording (why this value: ``COPY_COSINE``).
DUPLICATE_COSINE = COPY_COSINE
#: How much of the negatives' mean direction is subtracted from the seeds' (Rocchio's beta).
NEGATIVE_WEIGHT = 0.5
#: The first candidate request asks for this many times k; each widening multiplies it again.
WIDEN_FACTOR = 4
#: The first request asks for at least this many: ANNOY inspects trees x n nodes, so a small n
#: misses true neighbours that a wider search finds, and 100 costs little more than 10.
MIN_FETCH = 100
#: With diversity, MMR picks from at least this many times k eligible candidates.
MMR_POOL_FACTOR = 4


class QueryError(ValueError):
    """The query cannot be answered as asked (e.g. the seeds and negatives cancel out)."""


class UnknownTracks(LookupError):
    """Seed or negative ids that the snapshot does not hold."""

    def __init__(self, track_ids: Sequence[str], version: str) -> None:
        self.track_ids = tuple(track_ids)
        self.version = version
        shown = ", ".join(repr(t) for t in self.track_ids[:20])
        super().__init__(f"not in snapshot {version}: {shown}")


class Catalogue(Protocol):
    """The part of the snapshot read interface the engine needs (see CONTRACT in the docs)."""

    def __len__(self) -> int: ...

    def __contains__(self, track_id: object) -> bool: ...

    def get(self, track_id: str) -> TrackInfo:
        """The row of a track (raises ``TrackNotIndexed``)."""

    def nearest(self, vector: F32, k: int) -> list[Neighbour]:
        """The k tracks nearest to a retrieval-space vector, best first."""

    def vector(self, track_id: str) -> F32:
        """A track's unit vector in the retrieval space."""


@dataclass(frozen=True)
class Filters:
    """What a result may not be. Artist, album and tag names compare case-insensitively."""

    exclude_tracks: frozenset[str] = frozenset()
    exclude_artists: frozenset[str] = frozenset()
    exclude_albums: frozenset[str] = frozenset()
    #: A result carries at least one of these tags (none: any track).
    tags: frozenset[str] = frozenset()
    #: A result carries none of these tags.
    not_tags: frozenset[str] = frozenset()
    #: At most this many results share an artist (``None``: no cap).
    max_per_artist: int | None = None
    #: Collapse copies of one recording (same ISRC, audio digest, or vector).
    collapse_duplicates: bool = True

    @classmethod
    def of(
        cls,
        *,
        exclude_tracks: Iterable[str] = (),
        exclude_artists: Iterable[str] = (),
        exclude_albums: Iterable[str] = (),
        tags: Iterable[str] = (),
        not_tags: Iterable[str] = (),
        max_per_artist: int | None = None,
        collapse_duplicates: bool = True,
    ) -> Filters:
        """Filters with names folded for case-insensitive comparison."""
        return cls(
            frozenset(exclude_tracks),
            frozenset(a.casefold() for a in exclude_artists),
            frozenset(a.casefold() for a in exclude_albums),
            frozenset(t.casefold() for t in tags),
            frozenset(t.casefold() for t in not_tags),
            max_per_artist,
            collapse_duplicates,
        )

    def admits(self, track: TrackInfo) -> bool:
        """Whether ``track`` passes the track, artist, album and tag filters."""
        if track.track_id in self.exclude_tracks:
            return False
        if self.exclude_artists and any(
            a.casefold() in self.exclude_artists for a in track.artists
        ):
            return False
        if self.exclude_albums and (track.album or "").casefold() in self.exclude_albums:
            return False
        if self.tags or self.not_tags:
            names = {name.casefold() for name, _ in track.tags}
            if self.tags and not names & self.tags:
                return False
            if names & self.not_tags:
                return False
        return True


@dataclass(frozen=True)
class Query:
    """A recommendation request: weighted seeds, negatives, filters and list shape."""

    #: ``(track_id, weight)`` pairs; weights are positive.
    seeds: tuple[tuple[str, float], ...]
    negative: tuple[str, ...] = ()
    k: int = 10
    filters: Filters = field(default_factory=Filters)
    #: 0: pure relevance; 1: pure novelty against the results already picked (MMR's lambda).
    diversity: float = 0.0


@dataclass(frozen=True)
class Result:
    """A recommended track, its cosine to the query and the copies it stands for."""

    track: TrackInfo
    score: float
    #: Other copies of the same recording that were collapsed into this one.
    duplicates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recommendations:
    """The answer: results best first, and why it is short when it holds fewer than k."""

    results: list[Result]
    #: How many candidates the last search round asked the index for.
    searched: int
    short_reason: str | None = None


def completeness(track: TrackInfo) -> tuple[int, int, int, int, int]:
    """How well-known a copy is: ISRC, name, artists, album, audio digest (higher is better)."""
    return (
        int(track.isrc is not None),
        int(bool(track.name)),
        int(bool(track.artists)),
        int(bool(track.album)),
        int(track.audio_sha256 is not None),
    )


def best_known(tracks: Iterable[TrackInfo]) -> TrackInfo:
    """The copy to show among copies of one recording: most complete, then smallest id."""
    return min(tracks, key=lambda t: (tuple(-c for c in completeness(t)), t.track_id))


def query_vector(
    catalogue: Catalogue, seeds: Sequence[tuple[str, float]], negative: Sequence[str] = ()
) -> F32:
    """Unit query vector: the weighted mean of the seeds minus part of the negatives' mean.

    Raises:
        UnknownTracks: A seed or negative is not in the catalogue (all of them are listed).
        QueryError: No seed, a weight that is not positive, a track among both seeds and
            negatives, or seeds and negatives that cancel out.
    """
    if not seeds:
        msg = "at least one seed is required"
        raise QueryError(msg)
    both = sorted({t for t, _ in seeds} & set(negative))
    if both:
        msg = f"tracks cannot be both seeds and negatives: {', '.join(both[:10])}"
        raise QueryError(msg)
    unknown = [t for t, _ in seeds if t not in catalogue] + [
        t for t in negative if t not in catalogue
    ]
    if unknown:
        raise UnknownTracks(list(dict.fromkeys(unknown)), _version(catalogue))
    weights = np.array([w for _, w in seeds], dtype=np.float64)
    if not (np.isfinite(weights).all() and (weights > 0).all()):
        msg = "seed weights must be positive numbers"
        raise QueryError(msg)
    seed_vectors = np.stack([catalogue.vector(t) for t, _ in seeds]).astype(np.float64)
    query = (weights[:, None] * seed_vectors).sum(axis=0) / weights.sum()
    if negative:
        away = np.stack([catalogue.vector(t) for t in negative]).astype(np.float64).mean(axis=0)
        query = query - NEGATIVE_WEIGHT * away
    norm = float(np.linalg.norm(query))
    if norm < 1e-6:
        msg = "the seeds and negatives cancel out: no direction is left to search"
        raise QueryError(msg)
    unit: F32 = (query / norm).astype(np.float32)
    return unit


def recommend(catalogue: Catalogue, query: Query) -> Recommendations:
    """Up to ``query.k`` tracks for ``query``, best first (see the module docstring).

    The candidate search starts at ``WIDEN_FACTOR * k`` (at least ``MIN_FETCH``) and multiplies
    by ``WIDEN_FACTOR`` until k results pass every filter or the whole catalogue was searched,
    so at most ``log4(len / k) + 1`` rounds run and a short answer means the catalogue holds no
    more eligible tracks (``short_reason`` says so).

    Raises:
        UnknownTracks: A seed or negative is not in the catalogue.
        QueryError: See :func:`query_vector`.
    """
    vector = query_vector(catalogue, query.seeds, query.negative)
    blocked = [t for t, _ in query.seeds] + list(query.negative)
    return rank(catalogue, vector, query.k, query.filters, query.diversity, blocked=blocked)


def rank(
    catalogue: Catalogue,
    vector: F32,
    k: int,
    filters: Filters,
    diversity: float = 0.0,
    *,
    blocked: Sequence[str] = (),
) -> Recommendations:
    """The k eligible tracks nearest to ``vector``, widening the search in bounded steps.

    Args:
        catalogue: The snapshot read interface.
        vector: A unit vector of the retrieval space.
        k: How many results.
        filters: What a result may not be.
        diversity: MMR trade-off in [0, 1].
        blocked: Tracks never returned (seeds, negatives), nor, when duplicates collapse,
            any copy of them.
    """
    if k < 1:
        msg = f"k must be at least 1, got {k}"
        raise QueryError(msg)
    total = len(catalogue)
    blocker = _Blocker(catalogue, [*blocked, *filters.exclude_tracks], filters.collapse_duplicates)
    want_pool = k if diversity <= 0 else k * MMR_POOL_FACTOR
    fetch = min(total, max(k * WIDEN_FACTOR, k + len(blocked) + 1, MIN_FETCH))
    while True:
        found = catalogue.nearest(vector, fetch) if total else []
        # Candidates are read only as far as needed (reading one costs its vector); more of
        # them when the cap or the filters leave too few, the whole list before widening.
        needed = want_pool
        while True:
            pool, exhausted = _eligible(catalogue, found, filters, blocker, needed)
            chosen = _select(catalogue, pool, k, filters.max_per_artist, diversity)
            enough = len(chosen) >= k and len(pool) >= want_pool
            if enough or exhausted:
                break
            needed *= 2
        if enough or fetch >= total:
            break
        fetch = min(total, fetch * WIDEN_FACTOR)
    reason = None
    if len(chosen) < k:
        capped = len(pool) > len(chosen)
        reason = (
            f"only {len(chosen)} of the {total} tracks in the snapshot pass the filters"
            + (f" with at most {filters.max_per_artist} per artist" if capped else "")
            + (", counting each recording once" if filters.collapse_duplicates else "")
        )
    return Recommendations(chosen, fetch, reason)


class _Blocker:
    """Recognises blocked tracks and, when duplicates collapse, every copy of them."""

    def __init__(self, catalogue: Catalogue, track_ids: Iterable[str], copies: bool) -> None:
        present = [catalogue.get(t) for t in dict.fromkeys(track_ids) if t in catalogue]
        self.ids = frozenset(t.track_id for t in present)
        self.copies = copies and bool(present)
        if self.copies:
            self.isrcs = {t.isrc for t in present if t.isrc}
            self.digests = {t.audio_sha256 for t in present if t.audio_sha256}
            self.vectors = np.stack([catalogue.vector(t.track_id) for t in present])

    def blocks(self, track: TrackInfo, vector: F32 | None) -> bool:
        if track.track_id in self.ids:
            return True
        if not self.copies:
            return False
        if track.isrc in self.isrcs or track.audio_sha256 in self.digests:
            return True
        return vector is not None and float((self.vectors @ vector).max()) >= DUPLICATE_COSINE


@dataclass
class _Group:
    """Copies of one recording met in the candidates, best-known first once resolved."""

    score: float
    vector: F32
    members: list[TrackInfo]


def _eligible(
    catalogue: Catalogue,
    found: Sequence[Neighbour],
    filters: Filters,
    blocker: _Blocker,
    needed: int,
) -> tuple[list[tuple[Result, F32]], bool]:
    """Candidates that pass the filters, one per recording (unless duplicates are kept).

    Reading stops once ``needed`` groups exist and the next candidate scores too far below the
    last of them to be a copy of any (see ``COPY_WINDOW``), so those groups are complete.

    Returns:
        The pool, best first, and whether every candidate was read.
    """
    groups: list[_Group] = []
    by_isrc: dict[str, _Group] = {}
    by_digest: dict[str, _Group] = {}
    collapse = filters.collapse_duplicates
    window = 0  # groups before this one scored too far above the current candidate to be copies
    stacked: F32 | None = None  # row i: groups[i].vector, for one matrix product per candidate
    exhausted = True
    for n in found:
        if len(groups) >= needed and groups[needed - 1].score - n.score > COPY_WINDOW:
            exhausted = False
            break
        track = n.track
        vector = catalogue.vector(track.track_id)
        if blocker.blocks(track, vector) or not filters.admits(track):
            continue
        group = None
        if collapse:
            group = (by_isrc.get(track.isrc) if track.isrc else None) or (
                by_digest.get(track.audio_sha256) if track.audio_sha256 else None
            )
            if group is None:
                while window < len(groups) and groups[window].score - n.score > COPY_WINDOW:
                    window += 1
                if stacked is not None and window < len(groups):
                    close = np.flatnonzero(
                        stacked[window : len(groups)] @ vector >= DUPLICATE_COSINE
                    )
                    group = groups[window + int(close[0])] if close.size else None
        if group is None:
            group = _Group(n.score, vector, [])
            if collapse:
                if stacked is None:
                    stacked = np.empty((len(found), vector.shape[0]), dtype=np.float32)
                stacked[len(groups)] = vector
            groups.append(group)
        group.members.append(track)
        if collapse:
            if track.isrc:
                by_isrc.setdefault(track.isrc, group)
            if track.audio_sha256:
                by_digest.setdefault(track.audio_sha256, group)
    pool = []
    for group in groups:
        best = group.members[0] if len(group.members) == 1 else best_known(group.members)
        others = tuple(t.track_id for t in group.members if t is not best)
        vector = group.vector if best is group.members[0] else catalogue.vector(best.track_id)
        pool.append((Result(best, group.score, others), vector))
    return pool, exhausted


def _select(
    catalogue: Catalogue,
    pool: Sequence[tuple[Result, F32]],
    k: int,
    max_per_artist: int | None,
    diversity: float,
) -> list[Result]:
    """Pick k from the pool in relevance order, or by MMR, honouring the per-artist cap."""
    counts: dict[str, int] = {}

    def fits(track: TrackInfo) -> bool:
        if max_per_artist is None:
            return True
        return all(counts.get(a.casefold(), 0) < max_per_artist for a in track.artists)

    def take(track: TrackInfo) -> None:
        for a in {a.casefold() for a in track.artists}:
            counts[a] = counts.get(a, 0) + 1

    chosen: list[Result] = []
    if diversity <= 0:
        for result, _ in pool:
            if len(chosen) == k:
                break
            if fits(result.track):
                take(result.track)
                chosen.append(result)
        return chosen
    remaining = list(pool)
    picked: list[F32] = []
    while remaining and len(chosen) < k:
        best_at, best_value = -1, -np.inf
        for at, (result, vector) in enumerate(remaining):
            if not fits(result.track):
                continue
            redundancy = max((float(vector @ p) for p in picked), default=0.0)
            value = (1 - diversity) * result.score - diversity * redundancy
            if value > best_value:
                best_at, best_value = at, value
        if best_at < 0:
            break
        result, vector = remaining.pop(best_at)
        take(result.track)
        chosen.append(result)
        picked.append(vector)
    return chosen


def _version(catalogue: Catalogue) -> str:
    manifest = getattr(catalogue, "manifest", None)
    return str(getattr(manifest, "version", "?"))
