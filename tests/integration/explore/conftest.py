"""A query node serving a small snapshot of known tracks, with their rows in Cassandra.

Creates the test's own keyspace (migrated), bucket and topic prefix; writes six tracks (names
with accents, shared words, one audio file inside an allowed root and one outside) to Cassandra,
publishes a snapshot of five of them and has an in-process query node load it. Removes the
keyspace and bucket at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.face import face_key
from api.keys import follower_key
from config.settings import Settings
from features.versions import model_spec, model_version_of
from snapshots.builder import TrackVector, write_snapshot
from snapshots.store import SnapshotStore
from stores.cassandra import CassandraSession
from stores.migrations import migrate
from stores.objects import ObjectStore, ensure_bucket
from stores.tracks import TrackStore
from tests.pipelines import remove_deployment, until

#: (track id, name, artists, album, status, indexed, audio file name or None).
TRACKS = [
    ("t:halo", "Halo", ["Beyoncé"], "I Am... Sasha Fierce", "extracted", True, "halo.wav"),
    ("t:halloween", "Halloween Theme", ["John Carpenter"], "Halloween", "extracted", True, None),
    ("t:crazy", "Crazy in Love", ["Beyoncé", "Jay-Z"], "Dangerously", "extracted", True, None),
    ("t:sasha", "Single Ladies", ["Beyonce"], "I Am... Sasha Fierce", "extracted", True, None),
    ("t:etude", "Étude Op. 10 No. 3", ["Chopin"], "Études", "extracted", True, "outside.wav"),
    ("t:gone", "Gone Missing", ["Nobody"], None, "unavailable", False, None),
]
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)


@dataclass
class Node:
    """The running node and what it serves."""

    client: TestClient[web.Request, web.Application]
    settings: Settings
    model_version: str
    version: str


async def _seed(settings: Settings, roots: Path, outside: Path, model_version: str) -> None:
    dim = model_spec(model_version).dim
    async with CassandraSession(settings.cassandra) as db:
        store = TrackStore(db, settings.cassandra.keyspace)
        for track_id, name, artists, album, status, indexed, audio in TRACKS:
            folder = outside if audio == "outside.wav" else roots
            await store.upsert_track(
                track_id=track_id,
                name=name,
                artists=artists,
                album=album,
                duration_ms=30_000,
                isrc=None,
                source="local",
                source_ref="test",
                audio_refs=[f"file:{folder / audio}"] if audio else [],
            )
            reason = "no preview" if status == "unavailable" else None
            await store.set_status(track_id, status, error=reason)  # type: ignore[arg-type]
            if indexed:
                await store.upsert_embedding(
                    track_id=track_id,
                    model_version=model_version,
                    embedding=[0.0] * dim,
                    tags={"rock": 0.5},
                    audio_source="file:x",
                    audio_sha256="0" * 64,
                    extracted_at=datetime.now(UTC),
                )
        await store.touch_model_version(model_version, dim)


@pytest.fixture(scope="package")
async def node(servers: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Node]:
    run = f"x{np.random.default_rng().integers(1 << 40):x}"
    tmp = tmp_path_factory.mktemp(run)
    roots, outside = tmp / "music", tmp / "elsewhere"
    roots.mkdir()
    outside.mkdir()
    (roots / "halo.wav").write_bytes(WAV)
    (outside / "outside.wav").write_bytes(WAV)
    settings = servers.model_copy(
        update={
            "cassandra": servers.cassandra.model_copy(update={"keyspace": run}),
            "s3": servers.s3.model_copy(update={"bucket": run}),
            "kafka": servers.kafka.model_copy(update={"topic_prefix": f"{run}."}),
            "index": servers.index.model_copy(update={"cache_dir": tmp / "cache"}),
            "audio": servers.audio.model_copy(update={"local_roots": (roots,)}),
        }
    )
    model_version = model_version_of(settings.model)
    await migrate(settings.cassandra)
    await ensure_bucket(settings.s3)
    await _seed(settings, roots, outside, model_version)
    rng = np.random.default_rng(7)
    tracks = [
        TrackVector(
            track_id,
            rng.standard_normal(model_spec(model_version).dim).astype(np.float32),
            name=name,
            artists=tuple(artists),
            album=album,
            tags={"rock": 0.5, "pop": 0.25},
        )
        for track_id, name, artists, album, _, indexed, _ in TRACKS
        if indexed
    ]
    built = await asyncio.to_thread(
        write_snapshot, tmp / "build", tracks, model_version=model_version, trees=4, source_mark=1
    )
    async with ObjectStore(settings.s3) as objects:
        key = await SnapshotStore(objects).publish(built)
    try:
        async with TestClient(TestServer(create_app(settings))) as client:
            assert await client.app[follower_key].load(key)
            views = client.app[face_key].views
            assert views is not None

            async def derived() -> bool:
                return views.current is not None

            await until(derived, 30, "the search index of the snapshot", interval_s=0.05)
            yield Node(client, settings, model_version, built.manifest.version)
    finally:
        await remove_deployment(settings, run)
