"""Properties the engine must always hold, on a real snapshot with copies and many artists.

For any seeds, negatives, exclusions, tag filters, per-artist cap, diversity and duplicate
mode: no seed, negative or excluded track comes back; no excluded artist or album; the cap
holds; each recording comes back once (unless duplicates are included); and the answer holds
k results exactly when the catalogue has k eligible recordings (counted here from the ground
truth, independently of the engine).
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.recommendations import Filters, Query, best_known, recommend
from snapshots.index import LoadedSnapshot, TrackInfo
from tests.catalogues import ARTISTS, GENRES, Catalogue


def _possible(snapshot: LoadedSnapshot, catalogue: Catalogue, query: Query) -> int:
    """How many results the query can have, from the ground truth of copies."""
    f = query.filters
    blocked_ids = {t for t, _ in query.seeds} | set(query.negative) | set(f.exclude_tracks)
    rows = [snapshot.get(t.track_id) for t in catalogue.tracks]
    if f.collapse_duplicates:
        blocked = {catalogue.recording[t] for t in blocked_ids if t in catalogue.recording}
        groups: dict[str, list[TrackInfo]] = defaultdict(list)
        for row in rows:
            rec = catalogue.recording[row.track_id]
            if rec not in blocked and f.admits(row):
                groups[rec].append(row)
        reps = [best_known(members) for members in groups.values()]
    else:
        reps = [r for r in rows if r.track_id not in blocked_ids and f.admits(r)]
    if f.max_per_artist is None:
        return len(reps)
    by_artist: dict[str, int] = defaultdict(int)
    loose = 0
    for rep in reps:
        if rep.artists:
            by_artist[rep.artists[0].casefold()] += 1
        else:
            loose += 1
    return loose + sum(min(f.max_per_artist, n) for n in by_artist.values())


@st.composite
def queries(draw: st.DrawFn, ids: list[str]) -> Query:
    seeds = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=4, unique=True))
    weights = draw(st.lists(st.floats(0.1, 5), min_size=len(seeds), max_size=len(seeds)))
    others = [i for i in ids if i not in seeds]
    negative = draw(st.lists(st.sampled_from(others), max_size=2, unique=True))
    filters = Filters.of(
        exclude_tracks=draw(st.lists(st.sampled_from(ids + ["isrc:NOT-THERE"]), max_size=25)),
        exclude_artists=draw(
            st.lists(st.sampled_from([f"artist {a:02d}" for a in range(ARTISTS)]), max_size=6)
        ),
        exclude_albums=draw(st.lists(st.sampled_from(["ALBUM 03-1", "Album 07-0"]), max_size=2)),
        tags=draw(st.lists(st.sampled_from(GENRES), max_size=2)),
        not_tags=draw(st.lists(st.sampled_from(["mellow", "pop"]), max_size=1)),
        max_per_artist=draw(st.none() | st.integers(1, 3)),
        collapse_duplicates=draw(st.booleans()),
    )
    return Query(
        tuple(zip(seeds, weights, strict=True)),
        tuple(negative),
        k=draw(st.integers(1, 60)),
        filters=filters,
        diversity=draw(st.sampled_from([0.0, 0.0, 0.3, 1.0])),
    )


def test_the_properties_hold_for_any_query(snapshot: LoadedSnapshot, catalogue: Catalogue) -> None:
    ids = sorted(t.track_id for t in catalogue.tracks)

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )
    @given(query=queries(ids))
    def check(query: Query) -> None:
        answer = recommend(snapshot, query)
        got = [r.track for r in answer.results]
        got_ids = [t.track_id for t in got]
        f = query.filters
        assert len(set(got_ids)) == len(got_ids)
        forbidden = {t for t, _ in query.seeds} | set(query.negative) | f.exclude_tracks
        assert not forbidden & set(got_ids)
        assert all(f.admits(t) for t in got)
        if f.max_per_artist is not None:
            counts: dict[str, int] = defaultdict(int)
            for t in got:
                for a in t.artists:
                    counts[a.casefold()] += 1
            assert max(counts.values(), default=0) <= f.max_per_artist
        if f.collapse_duplicates:
            recordings = [catalogue.recording[t] for t in got_ids]
            assert len(set(recordings)) == len(recordings), "a recording came back twice"
            blocked = {catalogue.recording[t] for t in forbidden if t in catalogue.recording}
            assert not blocked & set(recordings), "a copy of a seed or excluded track came back"
            # The copy shown is the best-known one among those the filters admit.
            for result in answer.results:
                assert result.track.isrc is not None or not any(
                    snapshot.get(d).isrc for d in result.duplicates
                )
        possible = _possible(snapshot, catalogue, query)
        assert len(got) == min(query.k, possible), answer.short_reason
        assert (answer.short_reason is None) == (len(got) == query.k)
        if query.diversity == 0:
            scores = [r.score for r in answer.results]
            assert scores == sorted(scores, reverse=True)

    check()
