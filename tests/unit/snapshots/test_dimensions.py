"""Snapshots of any vector length, in the retrieval space their model version declares.

A synthetic 200-d model version stands for a model of another length than Choi's 160; the
manifest carries the length and the transform, and ``transform`` maps a raw query vector the way
the snapshot's own vectors were mapped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from features.versions import MODELS
from snapshots.builder import TrackVector, write_snapshot
from snapshots.index import LoadedSnapshot
from snapshots.manifest import Manifest
from snapshots.transform import DEFAULT_SPACE, Identity, ZScore
from stores.migrations import EMBEDDING_COLUMNS, embedding_column

F32 = npt.NDArray[np.float32]


def _tracks(n: int, dim: int, seed: int = 3) -> list[TrackVector]:
    rng = np.random.default_rng(seed)
    # Uneven scales per dimension, so z-scoring and plain cosine rank differently.
    scales = np.geomspace(0.01, 10.0, dim)
    vectors = (rng.normal(size=(n, dim)) * scales + scales).astype(np.float32)
    return [TrackVector(f"t{i:03d}", v) for i, v in enumerate(vectors)]


def _unit(v: npt.ArrayLike) -> F32:
    a = np.asarray(v, dtype=np.float64)
    return (a / np.linalg.norm(a)).astype(np.float32)


def _open(folder: Path, tracks: list[TrackVector], **kwargs: object) -> LoadedSnapshot:
    write_snapshot(folder, tracks, trees=10, source_mark=None, **kwargs)  # type: ignore[arg-type]
    return LoadedSnapshot.open(folder)


@pytest.fixture
def cosine200(tmp_path: Path) -> Iterator[tuple[LoadedSnapshot, list[TrackVector]]]:
    tracks = _tracks(120, 200)
    snapshot = _open(tmp_path, tracks, model_version="synthetic200+x", space="cosine")
    yield snapshot, tracks
    snapshot.close()


def test_a_200_d_cosine_snapshot_indexes_the_vectors_as_they_are(
    cosine200: tuple[LoadedSnapshot, list[TrackVector]],
) -> None:
    snapshot, tracks = cosine200
    assert (snapshot.manifest.dim, snapshot.manifest.transform) == (200, {"kind": "identity"})
    assert isinstance(snapshot.space, Identity)
    raw = {t.track_id: _unit(t.vector) for t in tracks}
    for query in ("t000", "t077"):
        found = snapshot.neighbours(query, 8, search_k=100_000)
        expected = sorted((o for o in raw if o != query), key=lambda o: -float(raw[query] @ raw[o]))
        assert [n.track_id for n in found] == expected[:8]
        for n in found:
            assert n.score == pytest.approx(float(raw[query] @ raw[n.track_id]), abs=1e-5)


def test_transform_maps_a_raw_vector_like_the_indexed_ones(
    cosine200: tuple[LoadedSnapshot, list[TrackVector]], tmp_path: Path
) -> None:
    snapshot, tracks = cosine200
    mapped = snapshot.transform(tracks[5].vector)
    assert mapped.dtype == np.float32 and mapped.shape == (200,)
    assert float(np.linalg.norm(mapped)) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(mapped, _unit(tracks[5].vector), atol=1e-6)
    np.testing.assert_allclose(mapped, _unit(snapshot.vector(tracks[5].track_id)), atol=1e-6)

    # The same vectors z-scored: the query is mapped with the snapshot's frozen statistics.
    z = _open(tmp_path / "z", tracks, model_version="synthetic200+x", space="zscore")
    try:
        assert isinstance(z.space, ZScore) and z.manifest.transform is not None
        assert z.manifest.transform["kind"] == "zscore"
        mapped = z.transform(tracks[5].vector)
        np.testing.assert_allclose(mapped, _unit(z.vector(tracks[5].track_id)), atol=1e-5)
        assert not np.allclose(mapped, _unit(tracks[5].vector), atol=1e-2)
    finally:
        z.close()


def test_transform_refuses_a_vector_of_another_length_or_without_direction(
    cosine200: tuple[LoadedSnapshot, list[TrackVector]],
) -> None:
    snapshot, _ = cosine200
    with pytest.raises(ValueError, match="must be 200 finite floats"):
        snapshot.transform(np.ones(160, dtype=np.float32))
    with pytest.raises(ValueError, match="must be 200 finite floats"):
        snapshot.transform([float("nan")] * 200)
    with pytest.raises(ValueError, match="zero vector"):
        snapshot.transform(np.zeros(200, dtype=np.float32))


def test_each_model_version_gets_the_space_its_model_declares(tmp_path: Path) -> None:
    for name, spec in MODELS.items():
        tracks = _tracks(20, spec.dim)
        built = write_snapshot(
            tmp_path / name, tracks, model_version=f"{name}+x", trees=2, source_mark=None
        )
        assert built.manifest.dim == spec.dim
        assert built.manifest.transform is not None
        kind = built.manifest.transform["kind"]
        assert kind == ("zscore" if spec.retrieval_space == "zscore" else "identity"), name
    # A model version no model declares keeps the space every snapshot had before.
    built = write_snapshot(
        tmp_path / "retired", _tracks(20, 200), model_version="retired", trees=2, source_mark=None
    )
    assert built.manifest.transform is not None
    assert built.manifest.transform["kind"] == DEFAULT_SPACE == "zscore"


def test_a_snapshot_without_a_recorded_transform_reads_as_indexed_raw(tmp_path: Path) -> None:
    # Snapshots built before transforms were always recorded say null.
    tracks = _tracks(30, 200)
    write_snapshot(tmp_path, tracks, model_version="m", trees=2, source_mark=None, space="cosine")
    path = tmp_path / "manifest.json"
    data = json.loads(path.read_bytes())
    data["transform"] = None
    path.write_bytes(Manifest.from_dict(data).to_json())
    snapshot = LoadedSnapshot.open(tmp_path)
    try:
        assert isinstance(snapshot.space, Identity)
        np.testing.assert_allclose(
            snapshot.transform(tracks[0].vector), _unit(tracks[0].vector), atol=1e-6
        )
    finally:
        snapshot.close()


def test_every_model_has_a_column_for_its_vectors_length() -> None:
    # A model of a new length needs a migration adding its column before it can store anything.
    for name, spec in MODELS.items():
        assert embedding_column(spec.dim) in EMBEDDING_COLUMNS.values(), name
    with pytest.raises(ValueError, match="needs a migration"):
        embedding_column(123)
