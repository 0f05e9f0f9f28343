"""Z-scored snapshots: statistics frozen into the manifest, and neighbours in the standard space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from features.versions import RetrievalSpace
from snapshots.builder import TrackVector, write_snapshot
from snapshots.errors import SnapshotCorrupt
from snapshots.index import LoadedSnapshot
from snapshots.manifest import Manifest
from snapshots.transform import Identity, ZScore

#: Length of the test vectors.
DIM = 160


def _two_groups(seed: int = 7) -> list[TrackVector]:
    """Two groups told apart by dims 1-10; dims 11-15 are loud noise that says nothing."""
    rng = np.random.default_rng(seed)
    tracks = []
    for i in range(40):
        group = "a" if i < 20 else "b"
        vector = np.zeros(DIM, dtype=np.float32)
        vector[11:16] = rng.normal(0, 50, 5)
        dims = slice(1, 6) if group == "a" else slice(6, 11)
        vector[dims] = 1.0
        vector[1:11] += rng.normal(0, 0.1, 10).astype(np.float32)
        tracks.append(TrackVector(f"{group}:{i:02d}", vector, name=f"{group} {i}"))
    return tracks


def _same_group_share(snapshot: LoadedSnapshot, k: int = 5) -> float:
    hits = total = 0
    for info in snapshot.page(0, len(snapshot)):
        for neighbour in snapshot.neighbours(info.track_id, k):
            hits += neighbour.track_id[0] == info.track_id[0]
            total += 1
    return hits / total


def _open(folder: Path, tracks: list[TrackVector], space: RetrievalSpace) -> LoadedSnapshot:
    built = write_snapshot(
        folder, tracks, model_version="m", trees=10, source_mark=None, space=space
    )
    return LoadedSnapshot.open(built.folder)


def test_statistics_are_frozen_into_the_manifest(tmp_path: Path) -> None:
    tracks = _two_groups()
    snapshot = _open(tmp_path, tracks, space="zscore")
    try:
        assert isinstance(snapshot.space, ZScore)
        vectors = np.stack([t.vector for t in tracks]).astype(np.float64)
        np.testing.assert_allclose(snapshot.space.mean, vectors.mean(axis=0), rtol=1e-5)
        std = vectors.std(axis=0)
        expected = np.where(std < 1e-6, 1.0, std)  # constant dimensions are not scaled
        np.testing.assert_allclose(snapshot.space.std, expected, rtol=1e-5)
        # The index holds the standardised vectors; vector() and transform() give them as unit
        # vectors, so a raw vector from outside lands on its indexed twin.
        standard = snapshot.space.apply(tracks[3].vector)
        expected_unit = standard / np.linalg.norm(standard)
        np.testing.assert_allclose(snapshot.vector("a:03"), expected_unit, atol=1e-5)
        np.testing.assert_allclose(snapshot.transform(tracks[3].vector), expected_unit, atol=1e-5)
    finally:
        snapshot.close()


def test_standardising_lets_the_informative_dimensions_decide(tmp_path: Path) -> None:
    tracks = _two_groups()
    raw = _open(tmp_path / "raw", tracks, space="cosine")
    standard = _open(tmp_path / "z", tracks, space="zscore")
    try:
        assert isinstance(raw.space, Identity)
        assert _same_group_share(standard) == 1.0
        assert _same_group_share(raw) < 0.8  # the loud dimension drowns the groups
    finally:
        raw.close()
        standard.close()


def test_a_malformed_transform_is_refused(tmp_path: Path) -> None:
    built = write_snapshot(tmp_path, _two_groups(), model_version="m", trees=2, source_mark=None)
    manifest_path = tmp_path / "manifest.json"
    data = json.loads(manifest_path.read_bytes())
    data["transform"]["std"] = data["transform"]["std"][:10]
    manifest_path.write_bytes(Manifest.from_dict(data).to_json())
    with pytest.raises(SnapshotCorrupt, match="bad transform"):
        LoadedSnapshot.open(built.folder)


def test_zscore_round_trips_and_checks_its_form() -> None:
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    z = ZScore.fit(vectors)
    again = ZScore.from_dict(json.loads(json.dumps(z.to_dict())), 3)
    np.testing.assert_array_equal(again.mean, z.mean)
    np.testing.assert_allclose(z.apply(vectors).mean(axis=0), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        ZScore.from_dict({"kind": "pca"}, 3)
    with pytest.raises(ValueError, match="non-empty"):
        ZScore.fit(np.zeros((0, 3), dtype=np.float32))
