"""Paths between two tracks on a real snapshot with copies and many artists."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.paths import find_path, slerp
from api.recommendations import Filters
from snapshots.index import LoadedSnapshot
from tests.catalogues import ARTISTS, Catalogue


def test_slerp_runs_on_the_great_circle_from_one_end_to_the_other() -> None:
    rng = np.random.default_rng(1)
    a, b = (v / np.linalg.norm(v) for v in rng.standard_normal((2, 16)).astype(np.float32))
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-6)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-6)
    angle = np.arccos(float(a @ b))
    for t in (0.25, 0.5, 0.75):
        point = slerp(a, b, t)
        assert abs(float(np.linalg.norm(point)) - 1) < 1e-6
        assert abs(np.arccos(np.clip(float(point @ a), -1, 1)) - t * angle) < 1e-4
    # Opposite ends have no unique great circle; the answer is still a unit vector.
    assert abs(float(np.linalg.norm(slerp(a, -a, 0.3))) - 1) < 1e-6


def test_paths_never_repeat_a_recording_and_keep_every_rule(
    snapshot: LoadedSnapshot, catalogue: Catalogue
) -> None:
    ids = sorted(t.track_id for t in catalogue.tracks)

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
    )
    @given(
        ends=st.lists(st.sampled_from(ids), min_size=2, max_size=2, unique=True),
        length=st.integers(2, 30),
        excluded=st.lists(st.sampled_from(ids), max_size=20),
        artists=st.lists(st.sampled_from([f"Artist {a:02d}" for a in range(ARTISTS)]), max_size=5),
        cap=st.none() | st.integers(1, 2),
        collapse=st.booleans(),
    )
    def check(
        ends: list[str],
        length: int,
        excluded: list[str],
        artists: list[str],
        cap: int | None,
        collapse: bool,
    ) -> None:
        start, end = ends
        filters = Filters.of(
            exclude_tracks=excluded,
            exclude_artists=artists,
            max_per_artist=cap,
            collapse_duplicates=collapse,
        )
        path = find_path(snapshot, start, end, length, filters)
        got = [s.track.track_id for s in path.steps]
        assert got[0] == start and got[-1] == end
        assert len(set(got)) == len(got)
        assert (len(got) == length) == (path.short_reason is None)
        middle = [s.track for s in path.steps[1:-1]]
        assert all(filters.admits(t) for t in middle)
        if collapse:
            recordings = [catalogue.recording[t] for t in got]
            if catalogue.recording[start] != catalogue.recording[end]:
                assert len(set(recordings)) == len(recordings)
        if cap is not None:
            counts: dict[str, int] = defaultdict(int)
            for step in path.steps:
                for a in step.track.artists:
                    counts[a.casefold()] += 1
            ends_only = {
                a.casefold() for s in (path.steps[0], path.steps[-1]) for a in s.track.artists
            }
            assert all(n <= max(cap, 2 if a in ends_only else cap) for a, n in counts.items())

    check()
