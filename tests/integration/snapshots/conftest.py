"""Fixtures for the snapshot layer's integration tests: a migrated keyspace, S3 and writers.

Creates a fresh keyspace and a fresh key prefix per test and deletes both afterwards.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pytest

from config.settings import Settings
from snapshots.store import SnapshotStore
from stores.cassandra import CassandraSession
from stores.migrations import LEGACY_DIM, migrate
from stores.objects import ObjectStore
from stores.tracks import TrackStore
from tests.keyspaces import drop_keyspace


@pytest.fixture
async def db(servers: Settings, unique: str) -> AsyncIterator[CassandraSession]:
    """A session on a freshly migrated keyspace named ``unique``."""
    settings = servers.cassandra.model_copy(update={"keyspace": unique})
    await migrate(settings)
    async with CassandraSession(settings) as session:
        try:
            yield session
        finally:
            await drop_keyspace(session, unique)


@pytest.fixture
async def store(servers: Settings, unique: str) -> AsyncIterator[SnapshotStore]:
    """Snapshots under a key prefix of their own, deleted after the test."""
    async with ObjectStore(servers.s3) as objects:
        prefix = f"test-{unique}/snapshots"
        try:
            yield SnapshotStore(objects, prefix=prefix)
        finally:
            async for key in objects.keys(prefix=f"test-{unique}/"):
                await objects.delete(key)


def clustered_vectors(
    n: int, clusters: int, seed: int, dim: int = LEGACY_DIM
) -> list[npt.NDArray[np.float32]]:
    """``n`` vectors around ``clusters`` centres; vector ``i`` is in cluster ``i % clusters``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return [
        (centres[i % clusters] + 0.05 * rng.normal(size=dim)).astype(np.float32) for i in range(n)
    ]


async def write_tracks(
    db: CassandraSession,
    keyspace: str,
    model_version: str,
    ids: Sequence[str],
    vectors: Sequence[npt.NDArray[np.float32]],
) -> None:
    """Write tracks and their vectors the way the pipeline does (through ``TrackStore``)."""
    tracks = TrackStore(db, keyspace)
    for track_id, vector in zip(ids, vectors, strict=True):
        await tracks.upsert_track(
            track_id=track_id,
            name=f"Song {track_id}",
            artists=[f"Artist {track_id}"],
            album=f"Album {track_id}",
            duration_ms=30_000,
            isrc=None,
            source="test",
            source_ref=track_id,
            audio_refs=[],
        )
        await tracks.upsert_embedding(
            track_id=track_id,
            model_version=model_version,
            embedding=vector.tolist(),
            tags={"rock": 0.25, f"tag-{zlib.crc32(track_id.encode()) % 3}": 0.5},
            audio_source="test",
            audio_sha256="0" * 64,
            extracted_at=datetime.now(UTC),
        )
    await tracks.touch_model_version(model_version, len(vectors[0]))
