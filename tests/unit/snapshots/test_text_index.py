"""The search postings a snapshot stores answer exactly like an index built from its rows."""

from __future__ import annotations

import bisect
import json
from pathlib import Path

import numpy as np
import pytest

from api.derived import MergedSearch, search_index
from api.search import SearchIndex
from snapshots.builder import TrackVector, write_snapshot
from snapshots.errors import SnapshotCorrupt
from snapshots.fresh import FreshSegment, FreshTrack
from snapshots.index import LoadedSnapshot
from snapshots.local import verify_folder
from snapshots.manifest import MANIFEST_NAME, SEARCH_FILES, SEARCH_WORDS_NAME
from snapshots.serving import ServingView
from snapshots.text_index import Words, open_postings

_NAMES = ["Lovely Day", "Love", "Étude in Blue", "Blue Monday", "Crazy in Love", "Unrelated"]
_ARTISTS = [("Bill Withers",), ("Someone",), ("Chopin",), ("New Order",), ("Beyoncé",), ()]
_ALBUMS = [None, "Love Album", "Études", None, "Dangerously in Love", "Other"]
_QUERIES = ["love", "LOV", "blue", "etude", "beyonce love", "in", "new ord", "zzz", "o"]


def _build(folder: Path, count: int = 600) -> LoadedSnapshot:
    rng = np.random.default_rng(3)
    tracks = [
        TrackVector(
            track_id=f"t{i:04d}",
            vector=rng.normal(size=16).astype(np.float32),
            name=f"{_NAMES[i % 6]} {i}" if i % 7 else None,
            artists=_ARTISTS[i % 6],
            album=_ALBUMS[i % 6],
        )
        for i in range(count)
    ]
    write_snapshot(folder, tracks, model_version="m1", trees=2, source_mark=None)
    return LoadedSnapshot.open(folder, verify=True)


def test_stored_postings_answer_like_an_index_built_from_the_rows(tmp_path: Path) -> None:
    snapshot = _build(tmp_path / "s")
    try:
        stored = SearchIndex.stored(snapshot.folder, snapshot.track_ids())
        assert stored is not None
        built = SearchIndex.build(snapshot.page(0, len(snapshot)))
        assert len(stored) == len(built) == 600
        for query in _QUERIES:
            assert stored.search(query, 25) == built.search(query, 25), query
        assert [m.track_id for m in stored.search("beyonce love", 3)] == ["t0004", "t0010", "t0016"]
        assert stored.search("zzz", 5) == []
    finally:
        snapshot.close()


def test_words_bisect_like_a_sorted_list(tmp_path: Path) -> None:
    words = ["a", "ab", "b", "beyonce", "etude", "z\u00e9"]
    mapped = Words("".join(w + "\n" for w in words).encode())
    assert len(mapped) == len(words) and list(mapped) == words and mapped[-1] == "z\u00e9"
    for probe in ["", "a", "aa", "b", "c", "etude", "zz", "\U0010ffff"]:
        assert bisect.bisect_left(mapped, probe) == bisect.bisect_left(words, probe)
    assert len(Words(b"")) == 0
    with pytest.raises(IndexError):
        mapped[len(words)]


def test_fresh_tracks_are_searched_beside_the_stored_postings(tmp_path: Path) -> None:
    snapshot = _build(tmp_path / "s", count=60)
    try:
        fresh = _segment(snapshot)
        track = FreshTrack("new1", "m1", np.ones(16, dtype=np.float32), (), name="Blue Velvet Love")
        assert fresh.add([track], known=snapshot.__contains__) == 1
        merged = search_index(ServingView(snapshot, fresh))
        assert isinstance(merged, MergedSearch) and len(merged) == 61
        assert "new1" in {m.track_id for m in merged.search("velvet", 5)}
        assert {m.track_id for m in merged.search("love", 100)} >= {"t0001", "new1"}
        without = search_index(ServingView(snapshot, _segment(snapshot)))
        assert isinstance(without, SearchIndex) and len(without) == 60
    finally:
        snapshot.close()


def test_a_snapshot_without_postings_still_loads_and_is_searched(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    _build(folder, count=40).close()
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    for name in SEARCH_FILES:
        del manifest["files"][name]
        (folder / name).unlink()
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert open_postings(folder, 40) is None
    snapshot = LoadedSnapshot.open(folder, verify=True)
    try:
        found = search_index(ServingView(snapshot, _segment(snapshot)))
        assert len(found) == 40 and found.search("love", 3)
    finally:
        snapshot.close()


def test_half_the_search_files_or_a_damaged_one_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    _build(folder, count=40).close()
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    del manifest["files"][SEARCH_WORDS_NAME]
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(SnapshotCorrupt, match="all of"):
        verify_folder(folder)
    with pytest.raises(ValueError, match="disagree"):
        open_postings(folder, 41)


def _segment(snapshot: LoadedSnapshot) -> FreshSegment:
    return FreshSegment(snapshot.transform, snapshot.manifest.model_version, limit=10)
