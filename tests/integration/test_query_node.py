"""The query node against the real S3 and Kafka: hot swap, refusal of a bad snapshot, broadcast."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import follower_key, holder_key
from config.settings import Settings
from features.versions import model_spec, model_version_of
from schemas.snapshots import IndexUpdatedV1
from snapshots.builder import TrackVector, write_snapshot
from snapshots.store import SnapshotStore
from stores.objects import ObjectStore, ensure_bucket
from tests.pipelines import announce, remove_deployment


@pytest.fixture
async def node(
    servers: Settings, unique: str, tmp_path: Path
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    settings = servers.model_copy(
        update={
            "s3": servers.s3.model_copy(update={"bucket": unique}),
            "kafka": servers.kafka.model_copy(update={"topic_prefix": f"{unique}."}),
            "index": servers.index.model_copy(update={"cache_dir": tmp_path / "cache"}),
        }
    )
    try:
        await ensure_bucket(settings.s3)
        async with TestClient(TestServer(create_app(settings))) as client:
            yield client
    finally:
        # The bucket holds an object-store volume until deleted, and the server has few.
        await remove_deployment(settings, unique)


async def _publish(
    settings: Settings,
    workdir: Path,
    count: int,
    seed: int,
    *,
    model_version: str | None = None,
    dim: int | None = None,
    missing: int = 0,
) -> str:
    rng = np.random.default_rng(seed)
    model_version = model_version or model_version_of(settings.model)
    dim = dim or model_spec(model_version).dim
    tracks = [
        TrackVector(
            f"t:{i:04d}",
            rng.standard_normal(dim).astype(np.float32),
            name=f"track {i}",
            # Every fifth track is tagged jazz, the others rock.
            tags={"jazz" if i % 5 == 0 else "rock": 0.9, "Mellow": 0.1},
        )
        for i in range(count)
    ]
    built = await asyncio.to_thread(
        write_snapshot,
        workdir,
        tracks,
        model_version=model_version,
        trees=5,
        source_mark=seed,
        missing=missing,
    )
    async with ObjectStore(settings.s3) as objects:
        return await SnapshotStore(objects).publish(built)


async def test_hot_swap_fails_no_request_and_a_bad_snapshot_is_refused(
    node: TestClient[web.Request, web.Application], tmp_path: Path
) -> None:
    app = node.app
    settings = app[follower_key].settings
    first = await _publish(settings, tmp_path / "a", 200, seed=1)
    assert await app[follower_key].load(first)
    served = app[holder_key].current
    assert served is not None and served.manifest.count == 200

    # Requests keep flowing while a second snapshot is downloaded, verified and swapped in.
    second = await _publish(settings, tmp_path / "b", 300, seed=2)
    statuses: list[int] = []
    stop = asyncio.Event()

    async def hammer() -> None:
        while not stop.is_set():
            response = await node.get("/recommend", params={"track_id": "t:0007", "k": "5"})
            statuses.append(response.status)
            await response.read()

    load = asyncio.create_task(app[follower_key].load(second))
    hammers = [asyncio.create_task(hammer()) for _ in range(4)]
    assert await load
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*hammers)
    assert statuses and set(statuses) == {200}
    swapped = app[holder_key].current
    assert swapped is not None and swapped.manifest.count == 300

    # A snapshot whose index file was altered after publishing is refused; 300 keeps serving.
    third = await _publish(settings, tmp_path / "c", 50, seed=3)
    async with ObjectStore(settings.s3) as objects:
        key = third.rsplit("/", 1)[0] + "/index.ann"
        data = bytearray(await objects.get(key))
        data[100] ^= 0xFF
        await objects.put(key, bytes(data))
    assert not await app[follower_key].load(third)
    assert app[holder_key].current is swapped
    response = await node.get("/readyz")
    assert (await response.json())["count"] == 300


async def test_a_broadcast_makes_the_node_load_the_new_snapshot(
    node: TestClient[web.Request, web.Application], tmp_path: Path
) -> None:
    app = node.app
    settings = app[follower_key].settings
    key = await _publish(settings, tmp_path / "a", 40, seed=4)
    version = key.rsplit("/", 2)[1]
    update = IndexUpdatedV1(
        version=version,
        model_version=model_version_of(settings.model),
        manifest_key=key,
        count=40,
    )
    await announce(settings, update)
    async with asyncio.timeout(30):
        while True:
            response = await node.get("/readyz")
            if response.status == 200:
                break
            await asyncio.sleep(0.2)
    body = await response.json()
    assert body["snapshot"] == version
    assert body["count"] == 40


async def test_recommendations_filtered_by_tag(
    node: TestClient[web.Request, web.Application], tmp_path: Path
) -> None:
    app = node.app
    settings = app[follower_key].settings
    assert await app[follower_key].load(await _publish(settings, tmp_path / "a", 200, seed=5))

    response = await node.get("/recommend", params={"track_id": "t:0001", "k": "10", "tag": "Jazz"})
    assert response.status == 200
    body = await response.json()
    assert body["tag"] == "jazz"
    assert len(body["results"]) == 10  # 40 jazz tracks: the search widens until 10 are found
    assert all("jazz" in {name for name, _ in r["tags"]} for r in body["results"])
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    unfiltered = await (
        await node.get("/recommend", params={"track_id": "t:0001", "k": "100"})
    ).json()
    jazz_in_order = [
        r["track_id"] for r in unfiltered["results"] if r["track_id"].endswith(("0", "5"))
    ]
    assert [r["track_id"] for r in body["results"]] == jazz_in_order[:10]

    response = await node.get("/recommend", params={"track_id": "t:0001", "tag": "polka"})
    assert response.status == 400
    assert "unknown tag" in (await response.json())["error"]
    # A known tag no track carries gives an empty list, not an error.
    response = await node.get("/recommend", params={"track_id": "t:0001", "tag": "metal"})
    assert response.status == 200
    assert (await response.json())["results"] == []


def _update(key: str, count: int, *, complete: bool = True) -> IndexUpdatedV1:
    _, model_version, version, _ = key.split("/")
    return IndexUpdatedV1(
        version=version,
        model_version=model_version,
        manifest_key=key,
        count=count,
        complete=complete,
    )


async def _serving(node: TestClient[web.Request, web.Application], key: str) -> None:
    """Wait until the node's /readyz names the snapshot of ``key``."""
    _, model_version, version, _ = key.split("/")
    async with asyncio.timeout(30):
        while True:
            response = await node.get("/readyz")
            body = await response.json()
            if response.status == 200 and body["snapshot"] == version:
                assert body["model"] == model_version
                return
            await asyncio.sleep(0.2)


async def test_the_old_model_serves_until_a_complete_snapshot_of_the_new_one(
    node: TestClient[web.Request, web.Application], tmp_path: Path
) -> None:
    app = node.app
    follower = app[follower_key]
    settings = follower.settings
    configured = follower.model_version
    old = "choi2017-previous"  # 160-d, whatever the length of the configured model's vectors

    # Only the old model's snapshot exists: the node serves it rather than nothing.
    first_old = await _publish(settings, tmp_path / "o1", 30, seed=6, model_version=old, dim=160)
    await announce(settings, _update(first_old, 30))
    await _serving(node, first_old)

    # An incomplete snapshot of the configured model is skipped; the old model's rebuilds are
    # followed meanwhile (the broadcasts arrive in order, so the second proves the first skipped).
    partial = await _publish(settings, tmp_path / "n1", 10, seed=7, missing=20)
    await announce(settings, _update(partial, 10, complete=False))
    second_old = await _publish(settings, tmp_path / "o2", 31, seed=8, model_version=old, dim=160)
    await announce(settings, _update(second_old, 31))
    await _serving(node, second_old)
    # A broadcast that wrongly claims completeness is refused on the manifest's word.
    assert not await follower.load(partial)
    assert "incomplete" in follower.holder.refused[-1][1]

    full = await _publish(settings, tmp_path / "n2", 30, seed=9)
    await announce(settings, _update(full, 30))
    await _serving(node, full)
    body = await (await node.get("/recommend", params={"track_id": "t:0003", "k": "3"})).json()
    assert body["model"] == configured
    # Once the configured model serves, the old one's snapshots are no longer taken.
    third_old = await _publish(settings, tmp_path / "o3", 32, seed=10, model_version=old, dim=160)
    assert not follower.wanted(_update(third_old, 32))

    # A node started now goes straight to the configured model's complete snapshot.
    async with TestClient(TestServer(create_app(settings))) as late:
        await _serving(late, full)
