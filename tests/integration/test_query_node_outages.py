"""The query node against real servers that are out of reach: it starts, serves and catches up.

Runs the query node in-process against the real Kafka and S3 (a bucket and topic prefix of the
test's own). Cassandra and Kafka are made unreachable by pointing the node at a port nothing
listens on; the object store by putting a TCP proxy between it and the node and cutting the
proxy, so the test itself still publishes through the real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import follower_key
from config.settings import Settings
from features.versions import model_spec, model_version_of
from schemas.snapshots import IndexUpdatedV1
from snapshots.builder import TrackVector, write_snapshot
from snapshots.store import SnapshotStore
from stores.cassandra import CassandraSession
from stores.migrations import migrate
from stores.objects import ObjectStore, ensure_bucket
from stores.tracks import TrackStore
from tests.keyspaces import drop_keyspace
from tests.pipelines import announce
from tests.tcp_proxy import TcpProxy, free_port

Client = TestClient[web.Request, web.Application]

#: Short enough for the test, long enough that one slow request is not counted as failing.
UNHEALTHY_AFTER_S = 2.0


@pytest.fixture
def isolated(servers: Settings, unique: str, tmp_path: Path) -> Settings:
    """Settings with a bucket, topic prefix and snapshot cache of the test's own, fast retries."""
    return servers.model_copy(
        update={
            "s3": servers.s3.model_copy(update={"bucket": unique}),
            "kafka": servers.kafka.model_copy(update={"topic_prefix": f"{unique}."}),
            "index": servers.index.model_copy(update={"cache_dir": tmp_path / "cache"}),
            "api": servers.api.model_copy(
                update={
                    "follower_unhealthy_after_s": UNHEALTHY_AFTER_S,
                    "follower_backoff_max_s": 1.0,
                }
            ),
        }
    )


@pytest.fixture
async def proxy(isolated: Settings) -> AsyncIterator[TcpProxy]:
    """A proxy in front of the real object store."""
    proxy = TcpProxy(isolated.s3.port)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def _publish(settings: Settings, workdir: Path, count: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    model_version = model_version_of(settings.model)
    dim = model_spec(model_version).dim
    tracks = [
        TrackVector(f"t:{i:04d}", rng.standard_normal(dim).astype(np.float32), name=f"track {i}")
        for i in range(count)
    ]
    built = await asyncio.to_thread(
        write_snapshot,
        workdir,
        tracks,
        model_version=model_version,
        trees=5,
        source_mark=seed,
    )
    await ensure_bucket(settings.s3)
    async with ObjectStore(settings.s3) as objects:
        return await SnapshotStore(objects).publish(built)


def _update(key: str, count: int) -> IndexUpdatedV1:
    _, model_version, version, _ = key.split("/")
    return IndexUpdatedV1(
        version=version, model_version=model_version, manifest_key=key, count=count
    )


async def _ready(client: Client) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    body: dict[str, Any] = await response.json()
    return response.status, body


async def _until_ready(client: Client, check: Any, deadline_s: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(deadline_s):
        while True:
            status, body = await _ready(client)
            if check(status, body):
                return body
            await asyncio.sleep(0.2)


async def _recommend_ok(client: Client) -> dict[str, Any]:
    response = await client.get("/recommend", params={"track_id": "t:0001", "k": "3"})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_a_node_without_cassandra_starts_and_serves(
    isolated: Settings, tmp_path: Path
) -> None:
    await _publish(isolated, tmp_path / "a", 40, seed=1)
    settings = isolated.model_copy(
        update={"cassandra": isolated.cassandra.model_copy(update={"port": free_port()})}
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        assert (await _recommend_ok(client))["results"]
        response = await client.get("/tracks/unavailable")
        assert response.status == 503
        assert response.content_type == "application/json"
        assert "Cassandra is not reachable" in (await response.json())["error"]
        status, body = await _ready(client)
        # Only /tracks/unavailable needs Cassandra: the node is ready, and says what fails.
        assert status == 200, body
        assert body["cassandra"]["failures"] >= 1
        assert body["cassandra"]["last_error"]


async def test_a_node_connects_to_cassandra_and_lists_unavailable_tracks(
    isolated: Settings, unique: str, tmp_path: Path
) -> None:
    settings = isolated.model_copy(
        update={"cassandra": isolated.cassandra.model_copy(update={"keyspace": unique})}
    )
    await migrate(settings.cassandra)
    try:
        async with CassandraSession(settings.cassandra) as db:
            await TrackStore(db, unique).set_status("t:gone", "unavailable", error="no preview")
        async with TestClient(TestServer(create_app(settings))) as client:
            # The first request waits for the connection being opened rather than failing.
            response = await client.get("/tracks/unavailable")
            assert response.status == 200, await response.text()
            assert [t["reason"] for t in (await response.json())["tracks"]] == ["no preview"]
            _, body = await _ready(client)
            assert body["cassandra"]["failures"] == 0
            assert body["cassandra"]["last_success_age_s"] is not None
    finally:
        async with CassandraSession(settings.cassandra) as db:
            await drop_keyspace(db, unique)


async def test_a_node_without_kafka_serves_the_stores_newest_snapshot(
    isolated: Settings, tmp_path: Path
) -> None:
    key = await _publish(isolated, tmp_path / "a", 40, seed=3)
    settings = isolated.model_copy(
        update={"kafka": isolated.kafka.model_copy(update={"port": free_port()})}
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        assert (await _recommend_ok(client))["snapshot"] == key.split("/")[2]
        body = await _until_ready(client, lambda status, _: status == 503)
        assert "snapshot follower has been failing" in body["error"]
        assert body["follower"]["failures"] >= 1
        assert body["snapshot"] == key.split("/")[2]
        assert body["snapshot_age_s"] >= 0
        # Still answering while unready: readiness is for the load balancer to decide.
        await _recommend_ok(client)


async def test_an_object_store_outage_during_a_broadcast_is_waited_out(
    isolated: Settings, proxy: TcpProxy, tmp_path: Path
) -> None:
    first = await _publish(isolated, tmp_path / "a", 40, seed=4)
    through_proxy = isolated.model_copy(
        update={"s3": isolated.s3.model_copy(update={"port": proxy.port})}
    )
    async with TestClient(TestServer(create_app(through_proxy))) as client:
        body = await _until_ready(client, lambda status, _: status == 200)
        assert body["snapshot"] == first.split("/")[2]
        assert body["follower"]["failures"] == 0

        # The store goes away from the node; a new snapshot is published and announced.
        await proxy.cut()
        second = await _publish(isolated, tmp_path / "b", 60, seed=5)
        await announce(isolated, _update(second, 60))
        body = await _until_ready(client, lambda status, _: status == 503)
        assert "snapshot follower has been failing" in body["error"], body
        assert body["snapshot"] == first.split("/")[2]
        assert body["follower"]["failures"] >= 1
        assert client.app[follower_key].holder.refused == []
        assert (await _recommend_ok(client))["snapshot"] == first.split("/")[2]

        # Back: the node catches up with the announced snapshot by itself and is ready again.
        await proxy.restore()
        body = await _until_ready(
            client,
            lambda status, body: status == 200 and body["snapshot"] == second.split("/")[2],
        )
        assert body["count"] == 60
        assert body["follower"]["failures"] == 0
        assert (await _recommend_ok(client))["snapshot"] == second.split("/")[2]
