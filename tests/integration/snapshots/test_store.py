"""Build from Cassandra, publish to S3, find, download, verify and query: the whole path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from snapshots.builder import build_snapshot
from snapshots.errors import NothingToIndex, SnapshotCorrupt, SnapshotMissing
from snapshots.index import LoadedSnapshot
from snapshots.source import current_mark, vectors_changed_since
from snapshots.store import SnapshotStore, download, to_serve
from stores.cassandra import CassandraSession
from tests.integration.snapshots.conftest import clustered_vectors, write_tracks

pytestmark = pytest.mark.integration


async def test_build_publish_find_download_and_query(
    db: CassandraSession, store: SnapshotStore, unique: str, tmp_path: Path
) -> None:
    model_version = f"mv-{unique}"
    ids = [f"track-{i:03d}" for i in range(64)]
    await write_tracks(db, unique, model_version, ids, clustered_vectors(64, clusters=4, seed=1))
    # Vectors of another model version are not part of this one's snapshot.
    await write_tracks(db, unique, "other", ["stray"], clustered_vectors(1, 1, seed=2))

    built = await build_snapshot(db, unique, model_version, trees=10, workdir=tmp_path / "build")
    manifest = built.manifest
    assert (manifest.count, manifest.dim, manifest.trees) == (64, 160, 10)
    assert manifest.source_mark == await current_mark(db, unique, model_version)
    assert not await vectors_changed_since(db, unique, model_version, manifest.source_mark)

    key = await store.publish(built)
    assert key == f"{store.prefix}/{model_version}/{manifest.version}/manifest.json"
    assert await store.publish(built) == key  # publishing again changes nothing
    assert await store.latest(model_version) == manifest
    assert await store.versions(model_version) == [manifest.version]

    folder = await store.download(key, tmp_path / "cache")
    assert folder == tmp_path / "cache" / model_version / manifest.version
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [model_version]
    assert await store.download(key, tmp_path / "cache") == folder  # the verified copy is reused

    snapshot = LoadedSnapshot.open(folder)
    try:
        snapshot.warm()
        assert [info.track_id for info in snapshot.page(0, 100)] == ids
        info = snapshot.get("track-005")
        assert info.name == "Song track-005"
        assert (info.artists, info.album) == (("Artist track-005",), "Album track-005")
        assert info.tags[0][0].startswith("tag-")  # best first: 0.5 before rock's 0.25
        assert info.tags[1] == ("rock", 0.25)
        for query in ids[:8]:
            found = snapshot.neighbours(query, 10)
            assert len(found) == 10
            assert query not in {n.track_id for n in found}
            scores = [n.score for n in found]
            assert scores == sorted(scores, reverse=True)
            # The 15 other members of its cluster are far closer than any other track.
            cluster = {t for i, t in enumerate(ids) if i % 4 == ids.index(query) % 4}
            assert {n.track_id for n in found} <= cluster
            assert all(score > 0.9 for score in scores)
    finally:
        snapshot.close()


async def test_a_snapshot_without_its_manifest_is_invisible(
    db: CassandraSession, store: SnapshotStore, unique: str, tmp_path: Path
) -> None:
    model_version = f"mv-{unique}"
    await write_tracks(db, unique, model_version, ["a", "b", "c"], clustered_vectors(3, 1, 3))
    older = await build_snapshot(db, unique, model_version, 2, tmp_path / "older")
    await store.publish(older)
    newer = await build_snapshot(db, unique, model_version, 2, tmp_path / "newer")
    assert newer.manifest.version > older.manifest.version

    # Half-published: every data file of the newer snapshot, but no manifest yet.
    folder = f"{store.prefix}/{model_version}/{newer.manifest.version}/"
    for name in newer.manifest.files:
        await store.objects.put(folder + name, (newer.folder / name).read_bytes())

    assert await store.versions(model_version) == [older.manifest.version]
    assert await store.latest(model_version) == older.manifest
    newer_key = store.manifest_key(model_version, newer.manifest.version)
    with pytest.raises(SnapshotMissing, match="no snapshot manifest"):
        await store.download(newer_key, tmp_path / "cache")

    # Completing the publish makes it visible, and prune removes nothing it still needs.
    await store.publish(newer)
    assert await store.latest(model_version) == newer.manifest
    assert await store.prune_remote(model_version, keep=1) == [older.manifest.version]
    assert await store.versions(model_version) == [newer.manifest.version]
    assert await store.latest(model_version) == newer.manifest


async def test_latest_picks_the_newer_of_two_snapshots(
    db: CassandraSession, store: SnapshotStore, unique: str, tmp_path: Path
) -> None:
    model_version = f"mv-{unique}"
    assert await store.latest(model_version) is None
    await write_tracks(db, unique, model_version, ["a", "b"], clustered_vectors(2, 1, 4))
    first = await build_snapshot(db, unique, model_version, 2, tmp_path / "1")
    await write_tracks(db, unique, model_version, ["c"], clustered_vectors(1, 1, 5))
    second = await build_snapshot(db, unique, model_version, 2, tmp_path / "2")
    # Published in the opposite order: "newest" comes from the version, not the upload time.
    await store.publish(second)
    await store.publish(first)
    latest = await store.latest(model_version)
    assert latest == second.manifest
    assert latest is not None and latest.count == 3
    assert await store.versions(model_version) == [second.manifest.version, first.manifest.version]


async def test_tampered_or_truncated_files_are_refused(
    db: CassandraSession, store: SnapshotStore, unique: str, tmp_path: Path
) -> None:
    model_version = f"mv-{unique}"
    await write_tracks(db, unique, model_version, ["a", "b", "c"], clustered_vectors(3, 1, 6))
    built = await build_snapshot(db, unique, model_version, 2, tmp_path / "build")
    key = await store.publish(built)
    folder = f"{store.prefix}/{model_version}/{built.manifest.version}/"
    cache = tmp_path / "cache"

    original = (built.folder / "index.ann").read_bytes()
    tampered = bytearray(original)
    tampered[100] ^= 0x01  # same size, one bit changed
    await store.objects.put(folder + "index.ann", bytes(tampered))
    with pytest.raises(SnapshotCorrupt, match="index.ann should have sha256"):
        await store.download(key, cache)
    assert list(cache.iterdir()) == []  # neither a partial folder nor a half-installed one

    await store.objects.put(folder + "index.ann", original)
    tracks = (built.folder / "tracks.jsonl").read_bytes()
    await store.objects.put(folder + "tracks.jsonl", tracks[:-10])
    with pytest.raises(SnapshotCorrupt, match="tracks.jsonl should be"):
        await store.download(key, cache)

    await store.objects.put(folder + "tracks.jsonl", tracks)
    await store.objects.put(key, b'{"format": 2, "version": "x"}')
    with pytest.raises(SnapshotCorrupt, match="missing fields"):
        await store.download(key, cache)
    assert await store.latest(model_version) is None  # a bad manifest is passed over

    await store.objects.put(key, built.manifest.to_json())
    await store.objects.delete(folder + "tracks.jsonl")
    with pytest.raises(SnapshotMissing, match="listed but not stored"):
        await store.download(key, cache)
    with pytest.raises(SnapshotMissing, match="not a manifest key"):
        await store.download(f"{store.prefix}/../../etc/manifest.json", cache)


async def test_an_empty_model_version_builds_nothing(
    db: CassandraSession, unique: str, tmp_path: Path
) -> None:
    with pytest.raises(NothingToIndex, match="has no usable vectors"):
        await build_snapshot(db, unique, f"mv-{unique}", 2, tmp_path / "build")
    assert not (tmp_path / "build").exists()


async def test_current_mark_moves_when_a_vector_is_written(
    db: CassandraSession, unique: str
) -> None:
    model_version = f"mv-{unique}"
    assert await current_mark(db, unique, model_version) is None
    assert not await vectors_changed_since(db, unique, model_version, None)

    await write_tracks(db, unique, model_version, ["a"], clustered_vectors(1, 1, 7))
    first = await current_mark(db, unique, model_version)
    assert first is not None
    assert await vectors_changed_since(db, unique, model_version, None)
    assert not await vectors_changed_since(db, unique, model_version, first)

    await asyncio.sleep(0.01)  # the mark has millisecond resolution
    await write_tracks(db, unique, model_version, ["b"], clustered_vectors(1, 1, 8))
    second = await current_mark(db, unique, model_version)
    assert second is not None and second > first
    assert await vectors_changed_since(db, unique, model_version, first)


async def test_query_node_shortcuts_find_and_fetch_the_newest(
    db: CassandraSession, store: SnapshotStore, unique: str, tmp_path: Path
) -> None:
    model_version = f"mv-{unique}"
    assert await to_serve(store.objects, model_version, prefix=store.prefix) is None
    await write_tracks(db, unique, model_version, ["a", "b"], clustered_vectors(2, 1, 9))
    built = await build_snapshot(db, unique, model_version, 2, tmp_path / "build")
    key = await store.publish(built)
    assert await to_serve(store.objects, model_version, prefix=store.prefix) == key
    folder = await download(store.objects, key, tmp_path / "cache", prefix=store.prefix)
    snapshot = LoadedSnapshot.open(folder, verify=True)
    try:
        assert snapshot.manifest == built.manifest
    finally:
        snapshot.close()
