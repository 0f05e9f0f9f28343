"""The by-id fast path answers exactly as the engine does, or leaves the query to it.

On real snapshots of the synthetic catalogue (copies of three kinds, many artists): every seed
and a spread of options, answered from the stored lists (32 long, and long enough to hold the
whole catalogue) and by the engine, with and without a fresh segment holding copies; and the
Hypothesis queries of the engine's properties. Answers compare equal in ids, order, scores (to
float rounding) and copies listed; results of exactly equal score may come in either order (the
engine's order of ties is its index's), so such runs are compared as sets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from api.recommend_fast import answer_by_list, answer_by_search, plan, search_plan
from api.recommend_views import _result_bytes, result_json
from api.recommendations import Filters, Query, Recommendations, recommend
from snapshots.builder import BuildOptions, write_snapshot
from snapshots.fresh import FreshSegment, FreshTrack
from snapshots.index import LoadedSnapshot
from snapshots.serving import ServingView
from tests.catalogues import Catalogue
from tests.unit.recommend.test_properties import queries

OPTIONS = [
    Filters(),
    Filters.of(collapse_duplicates=False),
    Filters.of(max_per_artist=2),
    Filters.of(exclude_artists=["artist 03"], not_tags=["mellow"]),
    Filters.of(exclude_albums=["album 05-1"], exclude_tracks=["isrc:QZ0000000001"]),
    Filters.of(tags=["rock"]),
    Filters.of(tags=["jazz", "pop"], max_per_artist=2, collapse_duplicates=False),
]
KS = (1, 10, 100)


def _view(snapshot: LoadedSnapshot, fresh: list[FreshTrack] = ()) -> ServingView:  # type: ignore[assignment]
    segment = FreshSegment(snapshot.transform, snapshot.manifest.model_version, 1000)
    segment.add(fresh, snapshot.__contains__)
    return ServingView(snapshot, segment)


def _fast(view: ServingView, query: Query, exact_share: float = 1.0) -> Recommendations | None:
    # By default every tag subset is scored exactly, whatever its share (the test catalogue
    # has 4 genres); 0 makes every tag common, searched as the engine searches.
    how = plan(view, query, exact_share=exact_share)
    return None if how is None else answer_by_list(view, query, how)


def _same(fast: Recommendations, engine: Recommendations, k: int) -> None:
    """The same answer, but for the order of results whose scores tie (to float rounding).

    Tied tracks come in the order of the engine's index, and at the k-th place either of two
    tied tracks may be the one kept.
    """
    assert fast.short_reason == engine.short_reason
    assert len(fast.results) == len(engine.results)
    scores = [r.score for r in engine.results]
    for a, b in zip(fast.results, scores, strict=True):
        assert a.score == pytest.approx(b, abs=1e-6)
    mine = {r.track.track_id: (at, sorted(r.duplicates)) for at, r in enumerate(fast.results)}
    theirs = {r.track.track_id: (at, sorted(r.duplicates)) for at, r in enumerate(engine.results)}
    for track_id in mine.keys() | theirs.keys():
        if track_id in mine and track_id in theirs:
            (at, copies), (there, their_copies) = mine[track_id], theirs[track_id]
            # Copies of equal score are listed in the order they were met: ties again.
            assert copies == their_copies, track_id
            assert abs(scores[at] - scores[there]) <= 1e-5, track_id
        else:
            at = (mine.get(track_id) or theirs[track_id])[0]
            assert len(scores) == k, track_id
            assert abs(scores[at] - scores[-1]) <= 1e-5, track_id


@pytest.fixture(scope="module")
def whole(
    catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoadedSnapshot]:
    """A snapshot whose stored lists hold every other track."""
    folder: Path = tmp_path_factory.mktemp("whole")
    options = BuildOptions(neighbours=len(catalogue.tracks))
    write_snapshot(
        folder, catalogue.tracks, model_version="m", trees=10, source_mark=None, options=options
    )
    loaded = LoadedSnapshot.open(folder)
    yield loaded
    loaded.close()


def _compare_all(view: ServingView, ids: list[str]) -> dict[tuple[int, int], int]:
    """Compare every seed under every option and k; how many the fast path answered."""
    answered: dict[tuple[int, int], int] = {}
    for o, filters in enumerate(OPTIONS):
        for k in KS:
            for seed in ids:
                query = Query(((seed, 1.0),), k=k, filters=filters)
                fast = _fast(view, query)
                if fast is not None:
                    engine = recommend(view, query)
                    _same(fast, engine, query.k)
                    answered[o, k] = answered.get((o, k), 0) + 1
                    if filters.tags:
                        searched = _fast(view, query, exact_share=0.0)
                        assert searched is not None
                        _same(searched, engine, query.k)
    return answered


def test_short_lists_answer_as_the_engine_or_not_at_all(
    snapshot: LoadedSnapshot, catalogue: Catalogue
) -> None:
    ids = sorted(t.track_id for t in catalogue.tracks)[::2]
    answered = _compare_all(_view(snapshot), ids)
    # The stored list settles most plain queries, every tag query (the subset is scored
    # exactly) and none that needs more than the list holds.
    assert answered[0, 10] == len(ids)
    assert answered[1, 10] == len(ids)
    assert answered[5, 100] == len(ids)
    assert (0, 100) not in answered


def test_whole_lists_answer_everything_including_short_answers(
    whole: LoadedSnapshot, catalogue: Catalogue
) -> None:
    ids = sorted(t.track_id for t in catalogue.tracks)
    view = _view(whole)
    answered = _compare_all(view, ids[::6])
    assert all(answered.get((o, k)) == len(ids[::6]) for o in range(len(OPTIONS)) for k in KS)
    # k beyond what the catalogue holds: the same short answer and reason as the engine's.
    query = Query(((ids[0], 1.0),), k=100, filters=Filters.of(tags=["rock"], max_per_artist=1))
    fast = _fast(view, query)
    assert fast is not None
    assert fast.short_reason is not None
    assert "with at most 1 per artist" in fast.short_reason


def test_fresh_copies_and_tracks_merge_as_the_engine_merges_them(
    snapshot: LoadedSnapshot, catalogue: Catalogue
) -> None:
    rng = np.random.default_rng(7)
    by_id = {t.track_id: t for t in catalogue.tracks}
    fresh = [
        # A copy by vector of a snapshot track, and tracks near others.
        FreshTrack("new:copy", "m", by_id["isrc:QZ0000000008"].vector.copy(), (("rock", 0.9),)),
        *(
            FreshTrack(
                f"new:{i}",
                "m",
                (t.vector + 0.3 * rng.standard_normal(t.vector.shape)).astype(np.float32),
                (("jazz", 0.7),),
                name=f"New {i}",
                artists=("Artist 99",),
            )
            for i, t in enumerate(catalogue.tracks[::9])
        ),
    ]
    view = _view(snapshot, fresh)
    assert len(view.fresh.state) == len(fresh)
    ids = sorted(t.track_id for t in catalogue.tracks)[::2]
    answered = 0
    for seed in ids:
        for filters in (Filters(), Filters.of(tags=["jazz"]), Filters.of(exclude_tracks=["new:3"])):
            query = Query(((seed, 1.0),), k=10, filters=filters)
            fast = _fast(view, query)
            if fast is not None:
                engine = recommend(view, query)
                _same(fast, engine, query.k)
                if filters.tags:
                    searched = _fast(view, query, exact_share=0.0)
                    assert searched is not None
                    _same(searched, engine, query.k)
                answered += 1
                assert "new:3" not in [r.track.track_id for r in fast.results] or (
                    filters.exclude_tracks == frozenset()
                )
    assert answered >= len(ids)


def test_what_the_lists_cannot_settle_is_searched_as_the_engine_searches(
    snapshot: LoadedSnapshot, catalogue: Catalogue
) -> None:
    # Any query by id without tags, the list's answer or not: the engine's rounds of search,
    # read in blocks, answer as the engine does, with and without fresh copies in sight.
    by_id = {t.track_id: t for t in catalogue.tracks}
    fresh = [
        FreshTrack("new:copy", "m", by_id["isrc:QZ0000000008"].vector.copy(), (("rock", 0.9),)),
        FreshTrack("new:near", "m", by_id["isrc:QZ0000000020"].vector * 0.9, (("pop", 0.5),)),
    ]
    ids = sorted(by_id)[::4]
    beyond_the_lists = 0
    for view in (_view(snapshot), _view(snapshot, fresh)):
        for filters in [f for f in OPTIONS if not f.tags]:
            for k in KS:
                for seed in ids:
                    query = Query(((seed, 1.0),), k=k, filters=filters)
                    how = plan(view, query)
                    assert how is not None
                    assert search_plan(view, query) == how
                    _same(answer_by_search(view, query, how), recommend(view, query), k)
                    beyond_the_lists += answer_by_list(view, query, how) is None
    assert beyond_the_lists >= 2 * len(ids)  # k=100 at least: the lists are 32 long


def test_queries_only_the_engine_answers_are_left_to_it(
    snapshot: LoadedSnapshot, catalogue: Catalogue
) -> None:
    view = _view(snapshot)
    a, b = sorted(t.track_id for t in catalogue.tracks)[:2]
    assert plan(view, Query(((a, 1.0), (b, 1.0)))) is None  # several seeds
    assert plan(view, Query(((a, 1.0),), negative=(b,))) is None
    assert plan(view, Query(((a, 1.0),), diversity=0.3)) is None
    assert plan(view, Query((("t:not-there", 1.0),))) is None  # the engine says 404
    assert search_plan(view, Query(((a, 1.0), (b, 1.0)))) is None
    assert search_plan(view, Query((("t:not-there", 1.0),))) is None
    assert search_plan(view, Query(((a, 1.0),), filters=Filters.of(tags=["rock"]))) is None
    # A tag a quarter of the catalogue carries: searched, off the event loop.
    common = plan(view, Query(((a, 1.0),), filters=Filters.of(tags=["rock"])))
    assert common is not None
    assert common.search
    assert not common.on_loop
    rare = plan(view, Query(((a, 1.0),), filters=Filters.of(tags=["rock"])), exact_share=0.5)
    assert rare is not None
    assert not rare.search
    assert rare.on_loop
    how = plan(view, Query(((a, 1.0),), k=100))
    assert how is not None
    assert answer_by_list(view, Query(((a, 1.0),), k=100), how) is None  # the list is 32 long


def test_copies_by_isrc_and_digest_are_read_from_the_metadata(snapshot: LoadedSnapshot) -> None:
    truth: dict[int, set[int]] = {}
    rows = [json.loads(snapshot.line(r)) for r in range(len(snapshot))]
    for r, row in enumerate(rows):
        for o, other in enumerate(rows):
            same_isrc = row.get("isrc") is not None and row.get("isrc") == other.get("isrc")
            same_digest = row.get("audio_sha256") is not None and row.get(
                "audio_sha256"
            ) == other.get("audio_sha256")
            if o != r and (same_isrc or same_digest):
                truth.setdefault(r, set()).add(o)
    assert truth
    assert snapshot.copies() == {r: frozenset(o) for r, o in truth.items()}


def test_any_query_of_the_properties_is_answered_as_the_engine_or_left_to_it(
    snapshot: LoadedSnapshot, catalogue: Catalogue
) -> None:
    ids = sorted(t.track_id for t in catalogue.tracks)
    view = _view(snapshot)

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(queries(ids))
    def check(query: Query) -> None:
        one = Query(query.seeds[:1], (), query.k, query.filters, 0.0)
        for q in (query, one):
            for share in (1.0, 0.0):
                fast = _fast(view, q, share)
                if fast is not None:
                    _same(fast, recommend(view, q), q.k)

    check()


def test_results_are_encoded_as_their_json(snapshot: LoadedSnapshot, catalogue: Catalogue) -> None:
    view = _view(snapshot)
    seed = sorted(t.track_id for t in catalogue.tracks)[0]
    for filters in (Filters(), Filters.of(collapse_duplicates=False)):
        query = Query(((seed, 1.0),), k=20, filters=filters)
        answer = recommend(view, query)
        assert any(r.duplicates for r in answer.results) == filters.collapse_duplicates
        for result in answer.results:
            # Twice: encoded, then from the cache.
            for _ in range(2):
                assert json.loads(_result_bytes(view, result)) == result_json(result)
