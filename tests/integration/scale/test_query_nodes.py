"""Several ``spotrec api`` processes follow the same broadcasts; a late one catches up.

Runs real query-node processes against the real Kafka and S3 (a bucket and topic prefix of the
test's own), publishes snapshots and broadcasts them the way the indexer does.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from config.settings import Settings
from features.versions import model_spec, model_version_of
from infra.servers.pipeline import ApiProcess
from schemas.snapshots import IndexUpdatedV1
from snapshots.builder import TrackVector, write_snapshot
from snapshots.store import SnapshotStore
from stores.objects import ObjectStore, ensure_bucket
from streams.provision import ensure_topics
from tests.pipelines import announce

#: How soon after a broadcast every node must serve the new snapshot.
FOLLOW_DEADLINE_S = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def isolated(servers: Settings, unique: str) -> Settings:
    settings = servers.model_copy(
        update={
            "s3": servers.s3.model_copy(update={"bucket": unique}),
            "kafka": servers.kafka.model_copy(update={"topic_prefix": f"{unique}."}),
        }
    )
    await ensure_bucket(settings.s3)
    await ensure_topics(settings)
    return settings


class Nodes:
    """Starts query-node processes, each with its own port, run folder and snapshot cache."""

    def __init__(self, settings: Settings, root: Path) -> None:
        self.settings = settings
        self.root = root
        self.started: list[ApiProcess] = []

    async def start(self, name: str) -> str:
        port = _free_port()
        settings = self.settings.model_copy(
            update={"api": self.settings.api.model_copy(update={"port": port})}
        )
        env = {
            "SPOTREC_S3_BUCKET": settings.s3.bucket,
            "SPOTREC_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
            "SPOTREC_INDEX_CACHE_DIR": str(self.root / name / "cache"),
        }
        node = ApiProcess(settings, self.root / name, env)
        self.started.append(node)
        await node.start()
        return node.endpoint


@pytest.fixture
async def nodes(isolated: Settings, tmp_path: Path) -> AsyncIterator[Nodes]:
    group = Nodes(isolated, tmp_path)
    yield group
    for node in group.started:
        await node.stop()


async def _publish_and_broadcast(settings: Settings, workdir: Path, count: int) -> str:
    """Publish a snapshot of ``count`` random tracks and announce it; returns its version."""
    rng = np.random.default_rng(count)
    model_version = model_version_of(settings.model)
    dim = model_spec(model_version).dim
    tracks = [
        TrackVector(f"t:{i:04d}", rng.standard_normal(dim).astype(np.float32), name=f"t{i}")
        for i in range(count)
    ]
    built = await asyncio.to_thread(
        write_snapshot, workdir, tracks, model_version=model_version, trees=5, source_mark=count
    )
    async with ObjectStore(settings.s3) as objects:
        key = await SnapshotStore(objects).publish(built)
    update = IndexUpdatedV1(
        version=built.manifest.version,
        model_version=model_version,
        manifest_key=key,
        count=count,
    )
    await announce(settings, update)
    return built.manifest.version


async def _serving(http: aiohttp.ClientSession, endpoint: str) -> str | None:
    async with http.get(f"{endpoint}/readyz") as response:
        return (await response.json()).get("snapshot") if response.status == 200 else None


async def _all_serve(
    http: aiohttp.ClientSession, endpoints: list[str], version: str, deadline_s: float
) -> float:
    """Seconds until every endpoint serves ``version``; fails after ``deadline_s``."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if all([await _serving(http, e) == version for e in endpoints]):
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    seen = {e: await _serving(http, e) for e in endpoints}
    msg = f"not every node serves {version} after {deadline_s} s: {seen}"
    raise AssertionError(msg)


async def test_nodes_follow_broadcasts_and_a_late_node_catches_up(
    isolated: Settings, nodes: Nodes, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as http:
        first = await _publish_and_broadcast(isolated, tmp_path / "s1", 100)
        a, b = await nodes.start("a"), await nodes.start("b")
        # Started after the broadcast: each loads the newest snapshot from the store.
        await _all_serve(http, [a, b], first, FOLLOW_DEADLINE_S)

        second = await _publish_and_broadcast(isolated, tmp_path / "s2", 150)
        assert second > first
        await _all_serve(http, [a, b], second, FOLLOW_DEADLINE_S)

        # Every answer names the snapshot it came from.
        for endpoint in (a, b):
            params = {"track_id": "t:0003", "k": "3"}
            async with http.get(f"{endpoint}/recommend", params=params) as response:
                body = await response.json()
            assert body["snapshot"] == second
            assert len(body["results"]) == 3

        third = await _publish_and_broadcast(isolated, tmp_path / "s3", 120)
        late = await nodes.start("late")
        await _all_serve(http, [a, b, late], third, FOLLOW_DEADLINE_S)
