"""Sonic paths: a sequence of tracks moving from one track to another through the space.

Reads the snapshot through the read interface (see :class:`api.recommendations.Catalogue`);
writes nothing. Points are spaced evenly along the great circle between the two unit vectors
(spherical interpolation); at each point the nearest eligible track not used yet (nor a copy of
one used, when duplicates collapse) is taken, so the path never repeats a recording.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from api.recommendations import F32, Catalogue, Filters, UnknownTracks, rank
from snapshots.index import TrackInfo


@dataclass(frozen=True)
class Step:
    """One track of a path; ``score`` is its cosine to the interpolated point it stands for."""

    track: TrackInfo
    score: float
    #: Cosine between this track and the start track.
    from_start: float


@dataclass(frozen=True)
class Path:
    """The tracks from start to end, both included, and why it is short if it is."""

    steps: list[Step]
    short_reason: str | None = None


def slerp(a: F32, b: F32, t: float) -> F32:
    """The unit vector a fraction ``t`` of the way from ``a`` to ``b`` on the great circle."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = float(np.clip(a64 @ b64, -1.0, 1.0))
    angle = float(np.arccos(cos))
    if angle < 1e-6 or np.pi - angle < 1e-6:
        # Same direction: every point is the start. Opposite: the great circle is not unique,
        # so fall back to the straight line (normalised), which still ends at b.
        point = (1 - t) * a64 + t * b64
    else:
        point = (np.sin((1 - t) * angle) * a64 + np.sin(t * angle) * b64) / np.sin(angle)
    norm = float(np.linalg.norm(point))
    if norm < 1e-9:  # the midpoint of opposite vectors
        point, norm = a64, 1.0
    return (point / norm).astype(np.float32)


def find_path(catalogue: Catalogue, start: str, end: str, length: int, filters: Filters) -> Path:
    """A path of ``length`` tracks from ``start`` to ``end`` (both included, never repeated).

    Args:
        catalogue: The snapshot read interface.
        start: The first track.
        end: The last track.
        length: Tracks in the path, at least 2.
        filters: What the tracks between the ends may not be (the ends are given, so kept).

    Raises:
        UnknownTracks: ``start`` or ``end`` is not in the catalogue.
        ValueError: ``length`` is below 2 or the ends are the same track.
    """
    if length < 2:
        msg = f"a path holds at least its two ends, got length {length}"
        raise ValueError(msg)
    if start == end:
        msg = "the path must start and end at different tracks"
        raise ValueError(msg)
    unknown = [t for t in (start, end) if t not in catalogue]
    if unknown:
        raise UnknownTracks(
            unknown, str(getattr(getattr(catalogue, "manifest", None), "version", "?"))
        )
    a, b = catalogue.vector(start), catalogue.vector(end)
    used = [start, end]
    middle: list[Step] = []
    reason = None
    # The per-artist cap counts the ends too; an artist at the cap is excluded from then on.
    counts: dict[str, int] = {}
    for track_id in used:
        _count(counts, catalogue.get(track_id))
    for i in range(1, length - 1):
        point = slerp(a, b, i / (length - 1))
        step_filters = _capped(filters, counts)
        found = rank(catalogue, point, 1, step_filters, blocked=used).results
        if not found:
            reason = (
                f"only {len(middle)} of the {length - 2} tracks between the ends pass the "
                "filters without repeating a recording"
            )
            break
        result = found[0]
        used.append(result.track.track_id)
        _count(counts, result.track)
        middle.append(
            Step(result.track, result.score, _cos(a, catalogue.vector(result.track.track_id)))
        )
    ends = (catalogue.get(start), catalogue.get(end))
    steps = [
        Step(ends[0], 1.0, 1.0),
        *middle,
        Step(ends[1], _cos(b, b), _cos(a, b)),
    ]
    return Path(steps, reason)


def _count(counts: dict[str, int], track: TrackInfo) -> None:
    for artist in {a.casefold() for a in track.artists}:
        counts[artist] = counts.get(artist, 0) + 1


def _capped(filters: Filters, counts: dict[str, int]) -> Filters:
    cap = filters.max_per_artist
    if cap is None:
        return filters
    full = {artist for artist, n in counts.items() if n >= cap}
    return replace(filters, exclude_artists=filters.exclude_artists | full)


def _cos(a: F32, b: F32) -> float:
    return float(np.clip(float(a.astype(np.float64) @ b.astype(np.float64)), -1.0, 1.0))
