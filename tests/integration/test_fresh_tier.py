"""The fresh tier against real Kafka and S3: a new track is served before the next snapshot.

A query node follows ``features-extracted.v1``: a record of a track the served snapshot does not
hold makes ``/recommend`` know the track and return it as a neighbour within seconds, and the
track leaves the fresh segment when a snapshot holding it is swapped in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer

from api.app import create_app
from api.keys import follower_key, fresh_key, holder_key
from config.settings import Settings
from features.versions import model_version_of
from schemas.features import FeaturesExtractedV1
from snapshots.builder import TrackVector, write_snapshot
from snapshots.store import SnapshotStore
from stores.objects import ObjectStore, ensure_bucket
from streams.names import FEATURES_EXTRACTED
from streams.provision import create_missing
from tests.pipelines import remove_deployment

DEADLINE_S = 20.0


def _scoped(servers: Settings, unique: str, tmp_path: Path) -> Settings:
    """The servers' settings with a bucket, topics, keyspace and cache of this test's own."""
    return servers.model_copy(
        update={
            "s3": servers.s3.model_copy(update={"bucket": unique}),
            "kafka": servers.kafka.model_copy(update={"topic_prefix": f"{unique}."}),
            "cassandra": servers.cassandra.model_copy(update={"keyspace": unique}),
            "index": servers.index.model_copy(update={"cache_dir": tmp_path / "cache"}),
        }
    )


@pytest.fixture
async def node(
    servers: Settings, unique: str, tmp_path: Path
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    settings = _scoped(servers, unique, tmp_path)
    await ensure_bucket(settings.s3)
    await create_missing(settings.kafka.bootstrap, {settings.kafka.topic(FEATURES_EXTRACTED): 2})
    try:
        async with TestClient(TestServer(create_app(settings))) as client:
            await asyncio.wait_for(client.app[fresh_key].assigned.wait(), DEADLINE_S)
            yield client
    finally:
        await remove_deployment(settings, unique)


def _catalogue(count: int) -> list[TrackVector]:
    rng = np.random.default_rng(5)
    return [
        TrackVector(f"t:{i:04d}", rng.standard_normal(160).astype(np.float32), name=f"track {i}")
        for i in range(count)
    ]


async def _publish(settings: Settings, folder: Path, tracks: list[TrackVector]) -> str:
    built = await asyncio.to_thread(
        write_snapshot,
        folder,
        tracks,
        model_version=model_version_of(settings.model),
        trees=5,
        source_mark=len(tracks),
    )
    async with ObjectStore(settings.s3) as objects:
        return await SnapshotStore(objects).publish(built)


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> float:
    """Poll an async predicate until true; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE_S:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    pytest.fail(f"not within {DEADLINE_S} s: {what}")


async def test_a_new_track_is_served_before_the_next_snapshot_and_leaves_the_segment_after(
    node: TestClient[web.Request, web.Application], tmp_path: Path
) -> None:
    app = node.app
    settings = app[follower_key].settings
    catalogue = _catalogue(300)
    assert await app[follower_key].load(await _publish(settings, tmp_path / "a", catalogue))

    # A new track near t:0007 (cosine about 0.9; others about 0.2), but not so near that it
    # counts as a copy of the same recording, which answers leave out.
    noise = np.random.default_rng(11).standard_normal(160).astype(np.float32)
    near = catalogue[7].vector + 0.5 * noise
    record = FeaturesExtractedV1(
        track_id="new:1",
        model_version=model_version_of(settings.model),
        embedding=[float(v) for v in near],
        audio_source="local",
        audio_sha256="0" * 64,
        tags=[["jazz", 0.8]],
        extracted_at=time.time(),
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.kafka.topic(FEATURES_EXTRACTED), record.dumps(), key=b"new:1"
        )
    finally:
        await producer.stop()

    async def known_and_returned() -> bool:
        own = await node.get("/recommend", params={"track_id": "new:1", "k": "3"})
        other = await node.get("/recommend", params={"track_id": "t:0007", "k": "3"})
        if own.status != 200 or other.status != 200:
            return False
        first = (await own.json())["results"][0]["track_id"]
        second = (await other.json())["results"][0]["track_id"]
        return bool(first == "t:0007" and second == "new:1")

    await _until(known_and_returned, "new:1 served and returned as t:0007's neighbour")
    tagged = await node.get("/recommend", params={"track_id": "t:0007", "k": "1", "tag": "jazz"})
    assert [r["track_id"] for r in (await tagged.json())["results"]] == ["new:1"]
    ready = await (await node.get("/readyz")).json()
    assert ready["fresh"] == 1 and ready["recall"]["at"] == 10

    # The next snapshot holds new:1: once it is swapped in, the segment lets the track go.
    with_new = [*catalogue, TrackVector("new:1", near, name="new one")]
    assert await app[follower_key].load(await _publish(settings, tmp_path / "b", with_new))
    assert len(app[holder_key].fresh) == 0
    ready = await (await node.get("/readyz")).json()
    assert (ready["fresh"], ready["count"]) == (0, 301)
    answer = await (await node.get("/recommend", params={"track_id": "t:0007", "k": "1"})).json()
    assert answer["results"][0]["track_id"] == "new:1"


async def test_records_produced_as_soon_as_a_starting_node_is_assigned_are_taken(
    servers: Settings, unique: str, tmp_path: Path
) -> None:
    # A node started beside a published snapshot: once its follower is assigned, every later
    # record is taken (it used to position itself a second time and skip what came between).
    settings = _scoped(servers, unique, tmp_path)
    await ensure_bucket(settings.s3)
    topic = settings.kafka.topic(FEATURES_EXTRACTED)
    await create_missing(settings.kafka.bootstrap, {topic: 8})
    catalogue = _catalogue(50)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
    await producer.start()
    try:
        await _publish(settings, tmp_path / "a", catalogue)
        async with TestClient(TestServer(create_app(settings))) as client:
            await asyncio.wait_for(client.app[fresh_key].assigned.wait(), DEADLINE_S)
            ids = [f"late:{i}" for i in range(8)]
            for i, track in enumerate(ids):
                record = FeaturesExtractedV1(
                    track_id=track,
                    model_version=model_version_of(settings.model),
                    embedding=[float(v) for v in catalogue[i].vector + 0.5],
                    audio_source="local",
                    audio_sha256=f"{i:064x}",
                    tags=[],
                )
                await producer.send_and_wait(topic, record.dumps(), key=track.encode())
            fresh = client.app[holder_key].fresh

            async def all_taken() -> bool:
                return all(track in fresh for track in ids)

            await _until(all_taken, "every record produced right after the assignment taken")
    finally:
        await producer.stop()
        await remove_deployment(settings, unique)
