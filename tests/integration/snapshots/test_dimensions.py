"""Vectors of several lengths in one keyspace, and a keyspace upgraded in place, on real Cassandra.

A synthetic 200-d model version stands beside 160-d Choi vectors: each is stored in the column of
its length, its model version records the length, and a snapshot of each carries it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from config.settings import Settings
from schemas.features import FeaturesExtractedV1
from snapshots.builder import build_snapshot
from snapshots.coverage import measure
from snapshots.index import LoadedSnapshot
from snapshots.source import read_columns, stored_dim
from stores.cassandra import CassandraSession
from stores.migrations import MIGRATIONS, migrate
from stores.tracks import TrackStore, bucket_of
from tests.integration.snapshots.conftest import clustered_vectors, write_tracks
from tests.keyspaces import drop_keyspace

pytestmark = pytest.mark.integration

CHOI = "choi2017+sf-soxrhq-12k-29s"
WIDE = "synthetic200+x"


def _features(track_id: str, model_version: str, vector: list[float]) -> FeaturesExtractedV1:
    return FeaturesExtractedV1(
        track_id=track_id,
        model_version=model_version,
        embedding=vector,
        audio_source="test",
        audio_sha256="0" * 64,
        tags=[["rock", 0.5]],
        extracted_at=datetime.now(UTC).timestamp(),
    )


async def test_two_lengths_side_by_side_each_in_its_own_snapshot(
    db: CassandraSession, unique: str, tmp_path: Path
) -> None:
    ids = [f"track-{i:02d}" for i in range(24)]
    old = clustered_vectors(24, clusters=3, seed=1)
    new = clustered_vectors(24, clusters=4, seed=2, dim=200)
    await write_tracks(db, unique, CHOI, ids, old)
    await write_tracks(db, unique, WIDE, ids, new)
    assert (await stored_dim(db, unique, CHOI), await stored_dim(db, unique, WIDE)) == (160, 200)

    read = await read_columns(db, unique, WIDE)
    assert read.skipped == [] and sorted(read.ids) == ids
    for i, track_id in enumerate(ids):
        np.testing.assert_allclose(read.vectors[read.ids.index(track_id)], new[i], rtol=1e-6)
    assert (await measure(db, unique, WIDE)).complete

    for model_version, dim, clusters in ((CHOI, 160, 3), (WIDE, 200, 4)):
        built = await build_snapshot(db, unique, model_version, 10, tmp_path / model_version)
        assert (built.manifest.dim, built.manifest.count) == (dim, 24)
        snapshot = LoadedSnapshot.open(built.folder)
        try:
            # Neighbours of the same cluster come first: the right vectors were indexed.
            for n in snapshot.neighbours(ids[0], 3):
                assert int(n.track_id[-2:]) % clusters == 0
            assert snapshot.transform(new[0] if dim == 200 else old[0]).shape == (dim,)
        finally:
            snapshot.close()


async def test_a_keyspace_upgraded_in_place_keeps_its_160_d_vectors(
    servers: Settings, unique: str, tmp_path: Path
) -> None:
    settings = servers.cassandra.model_copy(update={"keyspace": unique})
    # The schema of the release before vectors of other lengths, with a vector written by it.
    assert await migrate(settings, MIGRATIONS[:2]) == [m.name for m in MIGRATIONS[:2]]
    ids = [f"old-{i:02d}" for i in range(12)]
    old = clustered_vectors(12, clusters=2, seed=5)
    async with CassandraSession(settings) as db:
        try:
            insert = await db.prepare(
                f"INSERT INTO {unique}.embeddings (model_version, bucket, track_id, embedding, "
                "tags, extracted_at) VALUES (?, ?, ?, ?, ?, toTimestamp(now()))"
            )
            store = TrackStore(db, unique)
            for track_id, vector in zip(ids, old, strict=True):
                await db.execute(
                    insert, (CHOI, bucket_of(track_id), track_id, vector.tolist(), {"rock": 0.5})
                )
            await db.execute(
                f"UPDATE {unique}.model_versions SET updated_at = toTimestamp(now()) "
                "WHERE model_version = %s",
                (CHOI,),
            )

            assert await migrate(settings) == [m.name for m in MIGRATIONS[2:]]
            assert await migrate(settings) == []  # idempotent
            # The old rows are where they were, and read as 160-d (no recorded length).
            assert await stored_dim(db, unique, CHOI) == 160
            read = await read_columns(db, unique, CHOI)
            assert read.skipped == [] and sorted(read.ids) == ids
            np.testing.assert_allclose(read.vectors[read.ids.index(ids[3])], old[3], rtol=1e-6)
            assert await store.has_embedding(ids[3], CHOI)

            # A new model version of another length is written beside them.
            wide = clustered_vectors(12, clusters=2, seed=6, dim=200)
            await store.store_features(
                [_features(t, WIDE, v.tolist()) for t, v in zip(ids, wide, strict=True)]
            )
            assert await stored_dim(db, unique, WIDE) == 200
            assert (await measure(db, unique, WIDE)).complete
            old_snap = await build_snapshot(db, unique, CHOI, 5, tmp_path / "old")
            new_snap = await build_snapshot(db, unique, WIDE, 5, tmp_path / "new")
            assert (old_snap.manifest.dim, old_snap.manifest.count) == (160, 12)
            assert (new_snap.manifest.dim, new_snap.manifest.count) == (200, 12)
        finally:
            await drop_keyspace(db, unique)


async def test_a_vector_of_a_length_without_a_column_is_refused(
    db: CassandraSession, unique: str
) -> None:
    store = TrackStore(db, unique)
    with pytest.raises(ValueError, match="no embeddings column holds 123-d vectors"):
        await store.store_features([_features("t1", "odd+x", [0.5] * 123)])
    mixed = [_features("t1", WIDE, [0.5] * 200), _features("t2", WIDE, [0.5] * 160)]
    with pytest.raises(ValueError, match="lengths 200 and 160 in one batch"):
        await store.store_features(mixed)
    # Nothing was written by either batch.
    assert not await store.has_embedding("t1", WIDE)
    assert not await store.has_embedding("t1", "odd+x")
    assert await db.execute(f"SELECT * FROM {unique}.model_versions") == []
