"""Snapshots written from vectors: dense ids, exact neighbours, duplicates and verification."""

from __future__ import annotations

import os
import random
import string
import time
import uuid
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from snapshots.builder import TrackVector, write_snapshot
from snapshots.errors import NothingToIndex, SnapshotCorrupt, SnapshotMissing
from snapshots.index import LoadedSnapshot, load_snapshot
from snapshots.local import PARTIAL_PREFIX, prune_local, verify_folder

_ALPHABET = string.ascii_letters + string.digits


def _tracks(ids: list[str], seed: int = 7, dim: int = 160) -> list[TrackVector]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(ids), dim)).astype(np.float32)
    return [TrackVector(track_id=t, vector=v) for t, v in zip(ids, vectors, strict=True)]


def _cos(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_twenty_thousand_random_ids_get_distinct_dense_rows(tmp_path: Path) -> None:
    rng = random.Random(20_000)
    ids = ["".join(rng.choices(_ALPHABET, k=22)) for _ in range(20_000)]  # Spotify-like ids
    assert len(set(ids)) == 20_000
    # The scheme this replaces: 14 bits of a uuid1 cannot tell 20,000 tracks apart.
    assert len({uuid.uuid1().int >> 114 for _ in range(20_000)}) < 20_000

    built = write_snapshot(tmp_path, _tracks(ids), model_version="m1", trees=2, source_mark=None)
    assert built.manifest.count == 20_000
    snapshot = LoadedSnapshot.open(tmp_path, verify=True)
    try:
        rows = [snapshot.get(track_id).row for track_id in ids]
        assert sorted(rows) == list(range(20_000))
        page = snapshot.page(0, 20_000)
        assert [info.row for info in page] == list(range(20_000))
        assert [info.track_id for info in page] == sorted(ids)
        assert all(snapshot.get(info.track_id) == info for info in page)
    finally:
        snapshot.close()


def test_neighbours_are_exact_best_first_and_exclude_the_query(tmp_path: Path) -> None:
    ids = [f"t{i:03d}" for i in range(300)]
    tracks = _tracks(ids)
    write_snapshot(tmp_path, tracks, model_version="m1", trees=10, source_mark=None)
    snapshot = LoadedSnapshot.open(tmp_path)
    # Neighbours are found in the snapshot's standardised space, so numpy must compare there.
    vectors = {t.track_id: snapshot.space.apply(t.vector) for t in tracks}
    try:
        for query in ("t000", "t123", "t299"):
            # search_k covering every node makes ANNOY exact, so numpy must agree.
            found = snapshot.neighbours(query, 10, search_k=100_000)
            expected = sorted(
                (other for other in ids if other != query),
                key=lambda other: -_cos(vectors[query], vectors[other]),
            )[:10]
            assert [n.track_id for n in found] == expected
            for n in found:
                assert n.score == pytest.approx(_cos(vectors[query], vectors[n.track_id]), abs=1e-5)
            scores = [n.score for n in found]
            assert scores == sorted(scores, reverse=True)
    finally:
        snapshot.close()


def test_many_copies_of_the_query_vector_are_returned_but_never_the_query(tmp_path: Path) -> None:
    ids = [f"x{i:03d}" for i in range(200)]
    tracks = _tracks(ids)
    copy = tracks[50].vector
    # Six tracks share x050's vector; ANNOY may return any six of the seven at distance 0.
    tracks = [
        TrackVector(track_id=t.track_id, vector=copy) if t.track_id in _COPIES else t
        for t in tracks
    ]
    write_snapshot(tmp_path, tracks, model_version="m1", trees=5, source_mark=None)
    snapshot = LoadedSnapshot.open(tmp_path)
    try:
        for query in ("x050", "x051"):
            found = snapshot.neighbours(query, 5, search_k=100_000)
            assert len(found) == 5
            assert query not in {n.track_id for n in found}
            assert {n.track_id for n in found} <= _COPIES | {"x050"}
            assert all(n.score == pytest.approx(1.0) for n in found)
    finally:
        snapshot.close()


_COPIES = {"x051", "x052", "x053", "x054", "x055", "x056"}


def test_same_input_builds_the_same_index_file(tmp_path: Path) -> None:
    ids = [f"t{i}" for i in range(500)]
    one = write_snapshot(tmp_path / "1", _tracks(ids), model_version="m", trees=8, source_mark=1)
    two = write_snapshot(
        tmp_path / "2", list(reversed(_tracks(ids))), model_version="m", trees=8, source_mark=1
    )
    assert one.manifest.files == two.manifest.files
    assert one.manifest.version != two.manifest.version


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model version must match"):
        write_snapshot(tmp_path, _tracks(["a"]), model_version="../up", trees=1, source_mark=None)
    with pytest.raises(NothingToIndex, match="nothing to build"):
        write_snapshot(tmp_path, [], model_version="m", trees=1, source_mark=None)
    twice = _tracks(["a", "a"])
    with pytest.raises(ValueError, match="'a' is given twice"):
        write_snapshot(tmp_path, twice, model_version="m", trees=1, source_mark=None)
    # The first vector sets the length: every other must match it.
    short = [*_tracks(["a"]), TrackVector(track_id="s", vector=np.zeros(159, dtype=np.float32))]
    with pytest.raises(ValueError, match="'s': vector must be 160 finite floats"):
        write_snapshot(tmp_path, short, model_version="m", trees=1, source_mark=None)
    nan = np.full(200, np.nan, dtype=np.float32)
    with pytest.raises(ValueError, match="200 finite floats"):
        write_snapshot(
            tmp_path, [TrackVector("n", nan)], model_version="m", trees=1, source_mark=None
        )


def test_changed_bytes_and_missing_files_fail_verification(tmp_path: Path) -> None:
    write_snapshot(tmp_path, _tracks(["a", "b", "c"]), model_version="m", trees=1, source_mark=0)
    verify_folder(tmp_path)
    index = tmp_path / "index.ann"
    data = bytearray(index.read_bytes())
    data[len(data) // 2] ^= 0xFF
    index.write_bytes(bytes(data))
    with pytest.raises(SnapshotCorrupt, match="index.ann should have sha256"):
        verify_folder(tmp_path)
    with pytest.raises(SnapshotCorrupt):
        LoadedSnapshot.open(tmp_path, verify=True)
    index.write_bytes(bytes(data[:-4]))
    with pytest.raises(SnapshotCorrupt, match=r"should be \d+ bytes, found"):
        verify_folder(tmp_path)
    index.unlink()
    with pytest.raises(SnapshotMissing, match="index.ann is missing"):
        verify_folder(tmp_path)


def test_rows_that_disagree_with_the_manifest_are_refused(tmp_path: Path) -> None:
    write_snapshot(tmp_path, _tracks(["a", "b", "c"]), model_version="m", trees=1, source_mark=0)
    tracks_file = tmp_path / "tracks.jsonl"
    tracks_file.write_text("\n".join(tracks_file.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(SnapshotCorrupt, match="offsets.npy disagrees with tracks.jsonl"):
        LoadedSnapshot.open(tmp_path)  # without verify: the loader's own checks


async def test_load_snapshot_opens_and_warms_off_the_loop(tmp_path: Path) -> None:
    tracks = _tracks([f"w{i}" for i in range(50)])
    write_snapshot(tmp_path, tracks, model_version="m", trees=3, source_mark=None)
    snapshot = await load_snapshot(tmp_path, verify=True)
    try:
        assert len(snapshot.neighbours("w0", 3)) == 3
    finally:
        snapshot.close()


def test_prune_local_keeps_the_newest_and_the_protected(tmp_path: Path) -> None:
    versions = [f"2026010{d}T000000.000Z-0000000{d}" for d in range(1, 6)]
    for version in versions:
        (tmp_path / "m1" / version).mkdir(parents=True)
    (tmp_path / "m2" / versions[0]).mkdir(parents=True)
    old_partial = tmp_path / f"{PARTIAL_PREFIX}x"
    new_partial = tmp_path / f"{PARTIAL_PREFIX}y"
    old_partial.mkdir()
    new_partial.mkdir()
    hour_ago = time.time() - 3700
    os.utime(old_partial, (hour_ago, hour_ago))

    deleted = prune_local(tmp_path, keep=2, protect=frozenset({tmp_path / "m1" / versions[0]}))
    assert sorted(deleted) == sorted([old_partial, *(tmp_path / "m1" / v for v in versions[1:3])])
    assert sorted(p.name for p in (tmp_path / "m1").iterdir()) == [versions[0], *versions[3:]]
    assert (tmp_path / "m2" / versions[0]).is_dir()
    assert new_partial.is_dir()
    with pytest.raises(ValueError, match="keep must be at least 1"):
        prune_local(tmp_path, keep=0)
