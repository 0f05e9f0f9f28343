"""A model version's coverage, complete snapshots, and which snapshot a query node serves.

Writes vectors of two model versions into a fresh keyspace on the real Cassandra, builds and
publishes snapshots to the real S3, and reads back coverage, manifests and choices.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from snapshots.builder import TrackVector, build_snapshot, write_snapshot
from snapshots.coverage import measure
from snapshots.store import SnapshotStore, to_serve
from stores.cassandra import CassandraSession
from stores.tracks import TrackStore
from tests.integration.snapshots.conftest import clustered_vectors, write_tracks

OLD, NEW = "model-old", "model-new"
IDS = ["t1", "t2", "t3", "t4", "t5"]


async def test_a_new_version_is_incomplete_until_every_track_has_a_vector(
    db: CassandraSession, unique: str, tmp_path: Path
) -> None:
    vectors = clustered_vectors(len(IDS), 2, seed=11)
    await write_tracks(db, unique, OLD, IDS, vectors)
    old = await measure(db, unique, OLD)
    assert (old.have, old.missing, old.complete) == (5, 0, True)

    await write_tracks(db, unique, NEW, IDS[:2], vectors[:2])
    new = await measure(db, unique, NEW)
    assert (new.have, new.missing, new.total, new.complete) == (2, 3, 5, False)
    # The old version lacks nothing the new one has.
    assert (await measure(db, unique, OLD)).complete
    built = await build_snapshot(db, unique, NEW, 2, tmp_path / "partial")
    assert (built.manifest.count, built.manifest.missing) == (2, 3)
    assert not built.manifest.complete

    # Audio that turned out unusable holds nothing back; audio that only failed for now does:
    # the retry schedule tries it again until it has a vector or is given up on.
    tracks = TrackStore(db, unique)
    await tracks.set_status("t3", "unavailable", error="preview gone")
    await tracks.set_status("t4", "failed", error="timed out")
    assert (await measure(db, unique, NEW)).missing == 2
    await write_tracks(db, unique, NEW, ["t5"], vectors[4:])
    assert (await measure(db, unique, NEW)).missing == 1
    await tracks.set_status("t4", "unavailable", error="gave up after 5 scheduled retries")
    built = await build_snapshot(db, unique, NEW, 2, tmp_path / "full")
    assert (built.manifest.count, built.manifest.missing, built.manifest.complete) == (3, 0, True)


async def test_settled_means_a_vector_of_the_current_version_or_no_audio(
    db: CassandraSession, unique: str
) -> None:
    await write_tracks(db, unique, OLD, ["a", "b"], clustered_vectors(2, 1, seed=12))
    tracks = TrackStore(db, unique)
    await tracks.set_status("a", "extracted", audio_source="test")
    await tracks.set_status("b", "unavailable", error="no preview")
    assert await tracks.settled("a", OLD)
    assert not await tracks.settled("a", NEW)  # extracted by another model: goes through again
    assert await tracks.settled("b", NEW)
    assert not await tracks.settled("unknown", OLD)


async def _publish(
    store: SnapshotStore, tmp: Path, model_version: str, *, missing: int = 0, seed: int = 0
) -> str:
    ids = [f"{model_version}-{i}" for i in range(4)]
    tracks = [
        TrackVector(track_id, vector)
        for track_id, vector in zip(ids, clustered_vectors(4, 2, seed), strict=True)
    ]
    built = await asyncio.to_thread(
        write_snapshot,
        tmp / f"{model_version}-{seed}",
        tracks,
        model_version=model_version,
        trees=2,
        source_mark=seed,
        missing=missing,
    )
    await asyncio.sleep(0.002)  # versions are dated to the millisecond
    return await store.publish(built)


async def test_query_nodes_serve_the_old_version_until_the_new_one_is_complete(
    store: SnapshotStore, tmp_path: Path
) -> None:
    objects, prefix = store.objects, store.prefix
    assert await to_serve(objects, NEW, prefix=prefix) is None
    old = await _publish(store, tmp_path, OLD, seed=1)
    assert await to_serve(objects, NEW, prefix=prefix) == old
    await _publish(store, tmp_path, NEW, missing=3, seed=2)
    assert await to_serve(objects, NEW, prefix=prefix) == old, "an incomplete one is passed over"
    newer_old = await _publish(store, tmp_path, OLD, seed=3)
    assert await to_serve(objects, NEW, prefix=prefix) == newer_old
    complete = await _publish(store, tmp_path, NEW, seed=4)
    assert await to_serve(objects, NEW, prefix=prefix) == complete
    assert await to_serve(objects, OLD, prefix=prefix) == newer_old  # its own version first


async def test_pruning_keeps_the_newest_complete_snapshot(
    store: SnapshotStore, tmp_path: Path
) -> None:
    complete = await _publish(store, tmp_path, NEW, seed=1)
    for seed in (2, 3, 4):
        await _publish(store, tmp_path, NEW, missing=1, seed=seed)
    pruned = await store.prune_remote(NEW, keep=2)
    assert len(pruned) == 1
    assert len(await store.versions(NEW)) == 3
    assert await to_serve(store.objects, NEW, prefix=store.prefix) == complete
