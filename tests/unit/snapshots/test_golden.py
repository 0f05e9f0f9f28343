"""The committed golden snapshot loads and answers known neighbour lists and scores.

A change to the on-disk format, the builder or the ANNOY library makes these fail loudly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from snapshots.errors import SnapshotClosed, TrackNotIndexed
from snapshots.index import LoadedSnapshot
from snapshots.local import verify_folder
from snapshots.manifest import DATA_FILES
from tests.fixtures.snapshots import make_v1

GOLDEN = make_v1.GOLDEN_DIR


@pytest.fixture
def golden() -> Iterator[LoadedSnapshot]:
    snapshot = LoadedSnapshot.open(GOLDEN, verify=True)
    yield snapshot
    snapshot.close()


def _pairs(snapshot: LoadedSnapshot, track_id: str, k: int) -> list[tuple[str, float]]:
    return [(n.track_id, round(n.score, 4)) for n in snapshot.neighbours(track_id, k)]


def test_fixture_is_small_and_verifies() -> None:
    assert sum(p.stat().st_size for p in GOLDEN.iterdir()) < 100_000
    manifest = verify_folder(GOLDEN)
    assert manifest.version == "20250101T000000.000Z-0000a001"
    assert (manifest.model_version, manifest.count, manifest.dim) == ("golden", 10, 160)
    assert (manifest.metric, manifest.trees) == ("angular", 2)
    assert manifest.transform == {"kind": "identity"}
    assert manifest.source_mark == 1_735_689_600_000


def test_cluster_neighbours_and_scores(golden: LoadedSnapshot) -> None:
    assert _pairs(golden, "a1", 5) == [
        ("a2", 0.9701),
        ("a3", 0.8944),
        ("a4", 0.7428),
        ("b3", 0.2357),
        ("b1", 0.124),
    ]
    assert _pairs(golden, "a3", 3) == [("a4", 0.9135), ("a1", 0.8944), ("a2", 0.8677)]
    assert _pairs(golden, "b2", 2) == [("b3", 0.9487), ("b1", 0.8875)]


def test_identical_vector_is_a_neighbour_but_the_query_never_is(golden: LoadedSnapshot) -> None:
    assert _pairs(golden, "d1", 4) == [("d2", 1.0), ("b1", 0.1727), ("b3", 0.1641), ("b2", 0.1557)]
    assert _pairs(golden, "d2", 1) == [("d1", 1.0)]


def test_whole_list_runs_down_to_the_opposite_vector(golden: LoadedSnapshot) -> None:
    everything = _pairs(golden, "z1", 100)
    assert len(everything) == 9
    assert "z1" not in {track_id for track_id, _ in everything}
    # The first three are orthogonal to z1 (a tie at 0.0, in no fixed order).
    assert {track_id for track_id, _ in everything[:3]} == {"b2", "d1", "d2"}
    assert [score for _, score in everything[:3]] == [0.0, 0.0, 0.0]
    assert everything[3:] == [
        ("b1", -0.1109),
        ("b3", -0.2108),
        ("a4", -0.6644),
        ("a3", -0.8),
        ("a2", -0.8677),
        ("a1", -0.8944),
    ]


def test_rows_metadata_and_paging(golden: LoadedSnapshot) -> None:
    assert len(golden) == 10
    info = golden.get("a1")
    assert (info.row, info.name, info.artists, info.album) == (0, "Song A1", ("Band A",), "Album A")
    assert info.tags == (("group-a", 0.75), ("rock", 0.5), ("ambient", 0.125))
    assert golden.get("z1").album is None
    assert [t.track_id for t in golden.page(0, 3)] == ["a1", "a2", "a3"]
    assert [(t.row, t.track_id) for t in golden.page(8, 5)] == [(8, "d2"), (9, "z1")]
    assert golden.page(10, 5) == []
    # The stored vector, as a unit vector of the retrieval space (the golden one is raw).
    b2 = golden.vector("b2")
    assert float((b2 * b2).sum()) == pytest.approx(1.0, abs=1e-6)
    assert b2[3] == pytest.approx(2 * b2[4]) and b2[3] > 0


def test_unknown_track_and_closed_snapshot_are_typed_errors(golden: LoadedSnapshot) -> None:
    with pytest.raises(TrackNotIndexed, match="'nope' is not in snapshot 20250101T000000"):
        golden.neighbours("nope", 3)
    assert "nope" not in golden
    golden.close()
    with pytest.raises(SnapshotClosed):
        golden.nearest(golden.vector("a1"), 3)
    # Metadata and the stored lists need no index.
    assert golden.get("a1").row == 0
    assert [n.track_id for n in golden.neighbours("a1", 1)] == ["a2"]


def test_rebuilding_the_fixture_gives_identical_files(tmp_path: Path) -> None:
    rebuilt = make_v1.build(tmp_path / "v1")
    for name in (*DATA_FILES, "manifest.json"):
        assert (tmp_path / "v1" / name).read_bytes() == (GOLDEN / name).read_bytes(), name
    assert rebuilt.manifest == verify_folder(GOLDEN)
