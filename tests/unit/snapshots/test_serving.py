"""The served view: fresh tracks merge with the snapshot; the tag filter stays within its tag."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from api.snapshots import SnapshotHolder
from snapshots.builder import TrackVector, write_snapshot
from snapshots.errors import SnapshotClosed, TrackNotIndexed
from snapshots.fresh import FreshTrack
from snapshots.index import LoadedSnapshot

DIM = 24


def _tracks(count: int, seed: int) -> list[TrackVector]:
    rng = np.random.default_rng(seed)
    return [
        TrackVector(
            f"t:{i:04d}",
            rng.standard_normal(DIM).astype(np.float32),
            name=f"track {i}",
            # One track in 50 is "rare"; every track is rock.
            tags={"rock": 0.9, **({"rare": 0.5} if i % 50 == 0 else {})},
        )
        for i in range(count)
    ]


@pytest.fixture
def snapshot(tmp_path: Path) -> Iterator[LoadedSnapshot]:
    write_snapshot(tmp_path, _tracks(600, seed=1), model_version="m", trees=4, source_mark=1)
    loaded = LoadedSnapshot.open(tmp_path)
    yield loaded
    loaded.close()


def _fresh(track_id: str, raw: np.ndarray, tags: dict[str, float] | None = None) -> FreshTrack:
    return FreshTrack(
        track_id=track_id,
        model_version="m",
        raw=raw.astype(np.float32),
        tags=tuple((tags or {"rock": 0.9}).items()),
        name=f"new {track_id}",
    )


def test_a_fresh_track_is_queryable_and_returned_then_leaves_with_the_next_snapshot(
    snapshot: LoadedSnapshot, tmp_path: Path
) -> None:
    holder = SnapshotHolder()
    holder.swap(snapshot)
    view = holder.current
    assert view is not None
    # A new track almost on top of t:0007 (in raw space: the snapshot maps it as its own).
    near = _tracks(600, seed=1)[7].vector + 0.01
    assert holder.add_fresh([_fresh("new:1", near)]) == 1
    assert "new:1" in view and len(view) == 601
    assert view.get("new:1").name == "new new:1"
    found = view.neighbours("new:1", 3)
    assert found[0].track_id == "t:0007" and found[0].score > 0.99
    assert "new:1" not in {n.track_id for n in found}
    # ... and it is the best neighbour of t:0007, merged into the stored list by score.
    best = view.neighbours("t:0007", 5)
    assert best[0].track_id == "new:1"
    scores = [n.score for n in best]
    assert scores == sorted(scores, reverse=True)
    assert view.nearest(view.vector("new:1"), 1)[0].track_id == "new:1"
    # A track already in the snapshot never enters the segment.
    assert holder.add_fresh([_fresh("t:0001", near)]) == 0

    # The next snapshot holds it: it leaves the segment and is served from the snapshot.
    tracks = [*_tracks(600, seed=1), TrackVector("new:1", near, name="new new:1")]
    write_snapshot(tmp_path / "next", tracks, model_version="m", trees=4, source_mark=2)
    holder.swap(LoadedSnapshot.open(tmp_path / "next"))
    after = holder.current
    assert after is not None
    assert len(holder.fresh) == 0 and len(after) == 601
    assert after.get("new:1").row < 601
    assert after.neighbours("t:0007", 1)[0].track_id == "new:1"


def test_the_tag_filter_scores_only_its_tag_and_never_searches_the_index(
    snapshot: LoadedSnapshot,
) -> None:
    rare = set(snapshot.tagged("rare"))
    assert rare == {f"t:{i:04d}" for i in range(0, 600, 50)}
    snapshot.close()  # any ANNOY search would now raise: the filter must not need one
    with pytest.raises(SnapshotClosed):
        snapshot.nearest(snapshot.vector("t:0003"), 3)
    found = snapshot.with_tag("t:0003", 5, "RARE")
    assert {n.track_id for n in found} <= rare and len(found) == 5
    query = snapshot.vector("t:0003")
    exact = sorted(rare, key=lambda t: -float(snapshot.vector(t) @ query))[:5]
    assert [n.track_id for n in found] == exact
    # A common tag is answered from the stored list, exactly as without the filter.
    plain = snapshot.neighbours("t:0003", 5)
    assert snapshot.with_tag("t:0003", 5, "rock") == plain
    assert snapshot.with_tag("t:0003", 5, "unheard-of") == []
    with pytest.raises(TrackNotIndexed):
        snapshot.with_tag("nope", 5, "rock")


def test_a_swapped_out_snapshot_is_unloaded_once_no_request_holds_it(tmp_path: Path) -> None:
    write_snapshot(tmp_path / "a", _tracks(60, seed=1), model_version="m", trees=2, source_mark=1)
    snapshot = LoadedSnapshot.open(tmp_path / "a")
    holder = SnapshotHolder()
    holder.swap(snapshot)
    write_snapshot(tmp_path / "b", _tracks(50, seed=2), model_version="m", trees=2, source_mark=2)
    second = LoadedSnapshot.open(tmp_path / "b")
    in_flight = holder.current  # a request that took the view before the swap
    assert in_flight is not None
    holder.swap(second)
    gone = weakref.ref(snapshot)
    del snapshot
    gc.collect()
    assert gone() is not None  # still used by the request: still answering
    assert len(in_flight.nearest(in_flight.vector("t:0001"), 3)) == 3
    del in_flight
    gc.collect()
    assert gone() is None  # the last holder let go: unloaded, no timer
