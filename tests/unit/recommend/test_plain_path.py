"""The commonest query's shortcut answers as the engine does, or leaves the query to it.

On a real snapshot of the synthetic catalogue (copies of three kinds) and on one without
copies: every seed and several k, with and without a fresh segment, compared with the engine
in ids, order and scores (to float rounding, ties in either order); the plain depths against
their definition; and the HTTP body assembled from the stored lines against the one the
general path sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from api.keys import holder_key, queries_key
from api.recommend_fast import answer_by_list, answer_by_search, plan, search_plan
from api.recommend_plain import plain_rows
from api.recommend_views import _plain, _recommend, track_json
from api.recommendations import Filters, Query, Recommendations, Result, recommend
from api.snapshots import SnapshotHolder
from snapshots.builder import Columns, TrackVector, write_columns, write_snapshot
from snapshots.fresh import FreshSegment, FreshTrack
from snapshots.index import COPY_WINDOW, SCORE_MARGIN, LoadedSnapshot
from snapshots.manifest import MANIFEST_NAME
from snapshots.serving import ServingView
from tests.catalogues import Catalogue
from tests.fixtures.snapshots import make_v1
from tests.unit.recommend.test_fast_path import _same

KS = (1, 5, 10, 20)


def _view(snapshot: LoadedSnapshot, fresh: list[FreshTrack] = ()) -> ServingView:  # type: ignore[assignment]
    segment = FreshSegment(snapshot.transform, snapshot.manifest.model_version, 1000)
    segment.add(fresh, snapshot.__contains__)
    return ServingView(snapshot, segment)


@pytest.fixture(scope="module")
def distinct(
    catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoadedSnapshot]:
    """The catalogue's recordings once each (no copies), with no ISRC for some of them."""
    folder: Path = tmp_path_factory.mktemp("distinct")
    originals = [t for t in catalogue.tracks if catalogue.recording[t.track_id] == t.track_id]
    tracks: list[TrackVector] = [
        replace(t, isrc=None) if i % 3 == 0 else t for i, t in enumerate(originals)
    ]
    write_snapshot(folder, tracks, model_version="m", trees=10, source_mark=None)
    loaded = LoadedSnapshot.open(folder)
    yield loaded
    loaded.close()


def _compare(view: ServingView) -> int:
    """Compare every seed and k with the engine; how many the shortcut answered."""
    snapshot = view.snapshot
    answered = 0
    for row in range(len(snapshot)):
        seed = snapshot.info(row).track_id
        for k in KS:
            found = plain_rows(view, row, k)
            if found is None:
                continue
            engine = recommend(view, Query(((seed, 1.0),), k=k))
            assert all(not r.duplicates for r in engine.results)
            plain = [Result(snapshot.info(r), score) for r, score in zip(*found, strict=True)]
            _same(Recommendations(plain, 0, None), engine, k)
            answered += 1
    return answered


def test_without_copies_every_query_the_list_holds_is_answered_as_the_engine(
    distinct: LoadedSnapshot,
) -> None:
    view = _view(distinct)
    assert bool(distinct.alone().all())
    # The stored lists are 32 long: every k up to 20 is settled by them.
    assert _compare(view) == len(distinct) * len(KS)


def test_copies_are_left_to_the_full_path(snapshot: LoadedSnapshot, catalogue: Catalogue) -> None:
    view = _view(snapshot)
    answered = _compare(view)
    assert 0 < answered < len(snapshot) * len(KS)
    alone = snapshot.alone()
    for row in range(len(snapshot)):
        track_id = snapshot.info(row).track_id
        has_copy = any(
            catalogue.recording[t.track_id] == catalogue.recording[track_id]
            for t in catalogue.tracks
            if t.track_id != track_id
        )
        assert bool(alone[row]) == (not has_copy), track_id
        if has_copy:
            assert plain_rows(view, row, 10) is None


def test_plain_depths_follow_their_definition(snapshot: LoadedSnapshot) -> None:
    alone = snapshot.alone()
    depths = snapshot.plain_depths()
    assert 0 < int(depths.max()) <= snapshot.width
    for row in range(len(snapshot)):
        listed, scores = snapshot.stored_list(row)
        depth = 0
        for k in range(1, snapshot.width + 1):
            within = scores >= scores[k - 1] - COPY_WINDOW - SCORE_MARGIN
            if not (alone[row] and listed[k - 1] >= 0 and all(alone[listed[within]])):
                break
            depth = k
        assert depths[row] == depth, row


def test_fresh_tracks_near_the_answer_leave_it_to_the_full_path(
    distinct: LoadedSnapshot, catalogue: Catalogue
) -> None:
    rng = np.random.default_rng(3)
    raw = {t.track_id: t.vector for t in catalogue.tracks}
    rows = range(0, len(distinct), 7)
    fresh = [
        FreshTrack(
            f"new:{row}",
            "m",
            (raw[distinct.info(row).track_id] + 0.05 * rng.standard_normal(160)).astype(np.float32),
            (("jazz", 0.7),),
        )
        for row in rows
    ]
    view = _view(distinct, fresh)
    assert len(view.fresh.state) == len(fresh)
    answered = _compare(view)
    # A seed with a fresh track at its side is the engine's; one far from every one is not.
    for row in rows:
        assert plain_rows(view, row, 10) is None
    assert answered > 0


def _objects(snapshot: LoadedSnapshot, rows: Sequence[int]) -> list[Any]:
    # Each row's pieces closed and ended by a newline: one JSON object a line.
    pieces = snapshot.public_pieces(rows, [b"}\n"] * len(rows))
    assert pieces is not None
    return [json.loads(line) for line in b"".join(pieces).splitlines()]


def test_public_pieces_are_the_tracks_json(snapshot: LoadedSnapshot, tmp_path: Path) -> None:
    rows = list(range(len(snapshot)))
    lines = _objects(snapshot, rows)
    assert lines == [track_json(snapshot.info(r)) for r in rows]
    # Lines without an ISRC, as the fixture of the first format has them.
    golden = LoadedSnapshot.open(make_v1.GOLDEN_DIR)
    try:
        found = _objects(golden, range(len(golden)))
        assert found == [track_json(golden.info(r)) for r in range(len(golden))]
    finally:
        golden.close()
    # A line with its ISRC after the tags, as earlier builders wrote them: left to the
    # general path.
    meta: list[dict[str, Any]] = [
        {"track_id": "a", "name": "A", "artists": [], "album": None, "tags": [], "isrc": "X1"},
        {"track_id": "b", "name": "B", "artists": [], "album": None, "tags": []},
    ]
    vectors = np.eye(2, 8, dtype=np.float32)
    write_columns(
        tmp_path / "older",
        Columns(["a", "b"], vectors, meta),
        model_version="m",
        trees=2,
        source_mark=None,
    )
    older = LoadedSnapshot.open(tmp_path / "older")
    try:
        assert _objects(older, [1]) == [track_json(older.info(1))]
        assert older.public_pieces([0, 1]) is None
    finally:
        older.close()


async def test_the_body_is_the_one_the_full_path_sends(distinct: LoadedSnapshot) -> None:
    app = web.Application()
    holder = SnapshotHolder()
    holder.swap(distinct)
    app[holder_key] = holder
    with ThreadPoolExecutor(1, "query") as pool:  # the searches' pool, as a node has
        app[queries_key] = pool
        sent = 0
        for row in range(len(distinct)):
            seed = distinct.info(row).track_id
            for k in (1, 10):
                request = make_mocked_request("GET", f"/recommend?track_id={seed}&k={k}", app=app)
                query = Query(((seed, 1.0),), k=k)
                plain = _plain(request, query)
                assert plain is not None
                full = await _recommend(request, query, None)
                mine, theirs = json.loads(plain.body), json.loads(full.body)  # type: ignore[arg-type]
                assert {**mine, "results": None} == {**theirs, "results": None}
                assert len(mine["results"]) == len(theirs["results"]) == k
                for a, b in zip(mine["results"], theirs["results"], strict=True):
                    assert a["score"] == pytest.approx(b["score"], abs=2e-6)
                    if a["track_id"] == b["track_id"]:
                        assert {**a, "score": 0} == {**b, "score": 0}
                    # else two results of one score (to float rounding), in either order
                sent += 1
        assert sent == 2 * len(distinct)


def test_lists_below_the_recall_target_are_not_read(catalogue: Catalogue, tmp_path: Path) -> None:
    # A snapshot whose manifest states lists below the target (as a build above 100,000 tracks
    # can, when its most probes miss it): queries by id are searched, like queries by vector.
    originals = [t for t in catalogue.tracks if catalogue.recording[t.track_id] == t.track_id]
    folder = tmp_path / "weak"
    write_snapshot(folder, originals, model_version="m", trees=10, source_mark=None)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["recall"]["lists"] >= manifest["recall"]["target"]
    trusted = LoadedSnapshot.open(folder)
    manifest["recall"]["lists"] = 0.4
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    weak = LoadedSnapshot.open(folder)
    try:
        assert trusted.lists_meet_target and not weak.lists_meet_target
        assert int(weak.plain_depths().max()) == 0
        view = _view(weak)
        # The commonest tag and a rare one.
        by_count = sorted(weak.tags(), key=lambda t: len(weak.tagged_rows(t)))
        tags = list(dict.fromkeys([by_count[-1], by_count[0]]))
        answered = 0
        for row in range(len(weak)):
            seed = weak.info(row).track_id
            assert plain_rows(view, row, 10) is None
            query = Query(((seed, 1.0),), k=10)
            assert plan(view, query) is None
            assert not view.is_cheap(seed, 10)
            # Searched as the engine searches, its candidates read in blocks.
            searching = search_plan(view, query)
            assert searching is not None
            _same(answer_by_search(view, query, searching), recommend(view, query), 10)
            searched = weak.nearest_rows(weak.row_vector(row), 10, exclude=row)
            assert weak.neighbour_rows(seed, 10) == searched
            # A tag's rows are scored exactly, lists or not: the tag filter stays bounded.
            for tag in tags:
                tagged = Query(((seed, 1.0),), k=5, filters=Filters.of(tags=[tag]))
                how = plan(view, tagged)
                assert how is not None and how.tagged
                found = answer_by_list(view, tagged, how)
                assert found is not None
                _same(found, recommend(view, tagged), 5)
                answered += 1
        assert answered == len(weak) * len(tags)
        assert _view(trusted).is_cheap(trusted.info(0).track_id, 10)
    finally:
        trusted.close()
        weak.close()
