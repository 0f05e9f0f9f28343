"""The tag filter is bounded: a common tag's rows are visited by cell, within a row budget.

On real snapshots: a clustered catalogue of 3,000 tracks with a tag on half of them (every
cell's bound checked against every row of it, the rows a query scores counted, its answer
compared with the answer over every row of the tag), and the shared test catalogue built as a
snapshot from before the cells (it loads, and a common tag is searched as before, giving the
engine's answer).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from api.recommend_fast import answer_by_list, plan
from api.recommendations import Filters, Query, Recommendations, recommend
from snapshots import index as index_module
from snapshots.builder import TrackVector, write_snapshot
from snapshots.fresh import FreshSegment
from snapshots.index import LoadedSnapshot
from snapshots.manifest import MANIFEST_NAME, TAG_CELL_FILES, Manifest
from snapshots.serving import ServingView
from snapshots.tag_cells import TagCells
from snapshots.tag_query import best_in_cells
from tests.catalogues import Catalogue
from tests.unit.recommend.test_fast_path import _same

CLUSTERS = 30
PER_CLUSTER = 100
#: Rows a query may score: a fifth of the common tag's.
BUDGET = 300
SEEDS = [f"t:{i:05d}" for i in range(0, CLUSTERS * PER_CLUSTER, 97)]


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedSnapshot]:
    """Tight clusters; ``common`` on every other track, ``rare`` on every 50th."""
    rng = np.random.default_rng(3)
    dim = 32
    centres = rng.standard_normal((CLUSTERS, dim)) * 3
    tracks = []
    for i in range(CLUSTERS * PER_CLUSTER):
        vector = (centres[i % CLUSTERS] + rng.standard_normal(dim)).astype(np.float32)
        # Half of each cluster carries ``common`` (track i is in cluster i % CLUSTERS).
        tags = {"common": 0.5} if (i // CLUSTERS) % 2 else {"other": 0.5}
        if i % 50 == 0:
            tags["rare"] = 0.4
        tracks.append(TrackVector(f"t:{i:05d}", vector, name=f"Track {i}", tags=tags))
    loaded = _built(tmp_path_factory, "clustered", tracks)
    yield loaded
    loaded.close()


def _built(factory: pytest.TempPathFactory, name: str, tracks: list[TrackVector]) -> LoadedSnapshot:
    """``tracks`` written as a snapshot (5 trees) in a new folder, and opened."""
    folder: Path = factory.mktemp(name)
    write_snapshot(folder, tracks, model_version="m", trees=5, source_mark=None)
    return LoadedSnapshot.open(folder)


def _view(snapshot: LoadedSnapshot) -> ServingView:
    return ServingView(snapshot, FreshSegment(snapshot.transform, "m", 10))


def _answer(view: ServingView, query: Query, **how: float) -> Recommendations:
    planned = plan(view, query, **how)  # type: ignore[arg-type]
    assert planned is not None
    found = answer_by_list(view, query, planned)
    assert found is not None
    return found


def _ids(found: Recommendations) -> list[str]:
    return [r.track.track_id for r in found.results]


def test_every_row_of_a_cell_scores_at_most_its_bound(clustered: LoadedSnapshot) -> None:
    cells = clustered.tag_cells
    assert cells is not None
    rows = clustered.tagged_rows("common")
    rng = np.random.default_rng(1)
    for row in rng.choice(len(clustered), 20, replace=False).tolist():
        query = clustered.row_vector(row)
        walk = cells.walk(["common"], query)
        seen: list[int] = []
        while not walk.done:
            bound = walk.bound
            found = walk.more(1)  # one cell at a time
            seen.extend(found.tolist())
            assert float((clustered.rows_vectors(found) @ query).max()) <= bound
        # Every row of the tag is handed out once.
        assert sorted(seen) == sorted(rows.tolist())
        assert walk.scored == len(rows)


def test_a_common_tag_scores_few_rows_and_answers_exactly(clustered: LoadedSnapshot) -> None:
    view = _view(clustered)
    common = len(clustered.tagged_rows("common"))
    for seed in SEEDS:
        for k in (10, 40):
            query = Query(((seed, 1.0),), k=k, filters=Filters.of(tags=["common"]))
            how = plan(view, query, budget=common)  # the budget is never what stops it
            assert how is not None
            assert how.search  # half the catalogue: visited by cell, off the event loop
            assert not how.on_loop
            found = answer_by_list(view, query, how)
            assert found is not None
            # The cells' bounds settle it after a fraction of the tag's rows...
            assert found.searched <= common // 4
            # ... with the answer every row of the tag scored gives, exactly.
            _same(found, _answer(view, query, exact_share=1.0), k)


def test_past_the_budget_the_best_rows_scored_answer(clustered: LoadedSnapshot) -> None:
    view = _view(clustered)
    cells = clustered.tag_cells
    assert cells is not None
    largest = int((cells.ends - cells.starts).max())
    recalls = []
    for seed in SEEDS:
        # 100 results: twice what a cluster holds, beyond what the bounds can settle early.
        query = Query(((seed, 1.0),), k=100, filters=Filters.of(tags=["common"]))
        how = plan(view, query, budget=BUDGET)
        assert how is not None
        found = answer_by_list(view, query, how)
        assert found is not None
        assert len(found.results) == 100
        # The work is bounded: the rows of the cells visited, within the budget.
        assert found.searched <= BUDGET + largest
        exact = _ids(_answer(view, query, exact_share=1.0))
        recalls.append(len(set(_ids(found)) & set(exact)) / len(exact))
    assert np.mean(recalls) >= 0.8


def test_a_rare_tag_is_scored_whole_on_the_event_loop(clustered: LoadedSnapshot) -> None:
    view = _view(clustered)
    query = Query((("t:00007", 1.0),), k=20, filters=Filters.of(tags=["rare"]))
    how = plan(view, query)
    assert how is not None
    assert not how.search
    assert how.on_loop
    found = answer_by_list(view, query, how)
    assert found is not None
    # The 20 best of the tag's rows (this catalogue holds no copies).
    seed = clustered.row_of("t:00007")
    assert seed is not None
    rows = clustered.tagged_rows("rare").astype(np.int64)
    rows = rows[rows != seed]
    scores = clustered.rows_vectors(rows) @ clustered.row_vector(seed)
    best = rows[np.argsort(-scores, kind="stable")[:20]]
    assert _ids(found) == [clustered.info(int(r)).track_id for r in best]


@pytest.fixture(scope="module")
def older(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> LoadedSnapshot:
    """The test catalogue as a snapshot built before the tags' cells existed."""
    folder: Path = tmp_path_factory.mktemp("older")
    write_snapshot(folder, catalogue.tracks, model_version="m", trees=10, source_mark=None)
    manifest = Manifest.from_json((folder / MANIFEST_NAME).read_bytes())
    data = manifest.to_dict()
    for name in TAG_CELL_FILES:
        del data["files"][name]
        (folder / name).unlink()
    (folder / MANIFEST_NAME).write_text(json.dumps(data))
    return LoadedSnapshot.open(folder, verify=True)


def test_an_older_snapshot_searches_a_common_tag_as_before(
    older: LoadedSnapshot, catalogue: Catalogue
) -> None:
    assert older.tag_cells is None
    view = _view(older)
    ids = sorted(t.track_id for t in catalogue.tracks)[::12]
    for seed in ids:
        for k in (10, 100):
            query = Query(((seed, 1.0),), k=k, filters=Filters.of(tags=["rock"]))
            how = plan(view, query)
            assert how is not None
            assert how.search
            found = answer_by_list(view, query, how)
            assert found is not None
            _same(found, recommend(view, query), k)


def test_the_manifest_lists_all_the_cell_files_or_none(clustered: LoadedSnapshot) -> None:
    data = clustered.manifest.to_dict()
    del data["files"][TAG_CELL_FILES[0]]
    with pytest.raises(Exception, match="all of"):
        Manifest.from_dict(data)


def test_cell_files_that_disagree_are_refused(clustered: LoadedSnapshot, tmp_path: Path) -> None:
    spans = {tag: (0, 10**9) for tag in clustered.tags()}  # beyond the rows stored
    with pytest.raises(ValueError, match="disagree"):
        TagCells.open(clustered.folder, spans)
    assert TagCells.open(tmp_path, spans) is None  # no files: an older snapshot


def test_a_common_tag_outside_recommend_is_walked_by_cell(
    clustered: LoadedSnapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells = clustered.tag_cells
    assert cells is not None
    vectors = np.stack([clustered.row_vector(r) for r in range(len(clustered))])
    rows = clustered.tagged_rows("common")
    for seed in SEEDS:
        row = clustered.row_of(seed)
        assert row is not None
        query = clustered.row_vector(row)
        others = rows[rows != row]
        exact = others[np.argsort(-(vectors[others] @ query), kind="stable")][:10]
        # With room for every row of the tag, the cells' answer is the exact one.
        found = best_in_cells(cells, vectors, "common", query, 10, exclude=row, budget=len(rows))
        assert [r for r, _ in found] == exact.tolist()
        scores = [s for _, s in found]
        assert scores == sorted(scores, reverse=True)
        # Within a budget far below the tag's rows it still gives k rows carrying the tag.
        short = best_in_cells(cells, vectors, "common", query, 10, exclude=row, budget=BUDGET)
        assert len(short) == 10 and all(r in set(others.tolist()) for r, _ in short)
    # ``with_tag`` takes that path for a tag above the whole-scoring size (lowered here to
    # below this tag's rows), within the default budget: here the exact answer.
    monkeypatch.setattr(index_module, "WHOLE_TAG_ROWS", len(rows) // 2)
    for seed in SEEDS[:5]:
        row = clustered.row_of(seed)
        assert row is not None
        others = rows[rows != row]
        exact = others[np.argsort(-(vectors[others] @ clustered.row_vector(row)), kind="stable")]
        named = [n.track_id for n in clustered.with_tag(seed, 5, "common")]
        assert named == [clustered.info(int(r)).track_id for r in exact[:5]]


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedSnapshot]:
    """Few recordings, each in hundreds of variations, the closest of them copies by vector."""
    rng = np.random.default_rng(11)
    dim = 32
    centres = rng.standard_normal((3, dim)) * 3
    tracks = []
    for i in range(3000):
        noise = rng.standard_normal(dim) * rng.uniform(0.02, 0.2)
        vector = (centres[i % 3] + noise).astype(np.float32)
        tags = {"common": 0.5} if (i // 6) % 2 else {"other": 0.5}
        tracks.append(TrackVector(f"c:{i:05d}", vector, name=f"Take {i}", tags=tags))
    loaded = _built(tmp_path_factory, "crowded", tracks)
    yield loaded
    loaded.close()


def test_past_the_reads_the_groups_read_answer(crowded: LoadedSnapshot) -> None:
    # Where variations crowd the copy window, the engine reads far past its k-th group only to
    # collapse copies into the groups shown; past ``reads`` candidates the groups made of
    # them answer: the same recordings in the same order and scores, fewer copies listed.
    view = _view(crowded)
    common = len(crowded.tagged_rows("common"))
    assert crowded.tag_cells is not None
    listed = exact_listed = 0
    for seed in [f"c:{i:05d}" for i in range(6, 3000, 97)]:
        query = Query(((seed, 1.0),), k=10, filters=Filters.of(tags=["common"]))
        exact = _answer(view, query, budget=common, reads=10**9)
        capped = _answer(view, query, budget=common, reads=0)  # the first round's 4k + 64
        assert capped.short_reason == exact.short_reason is None
        assert len(capped.results) == len(exact.results) == 10
        for mine, theirs in zip(capped.results, exact.results, strict=True):
            assert mine.score == pytest.approx(theirs.score, abs=1e-6)
            group = {theirs.track.track_id, *theirs.duplicates}
            assert {mine.track.track_id, *mine.duplicates} <= group
            listed += len(mine.duplicates)
            exact_listed += len(theirs.duplicates)
    # The copies are many, and the cap leaves some of them unread.
    assert 0 < listed < exact_listed
