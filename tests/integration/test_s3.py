"""The object store against the real SeaweedFS server: put, get, list and delete."""

from __future__ import annotations

import os

import pytest

from config.settings import Settings
from stores.errors import StoreUnavailable
from stores.objects import ObjectNotFound, ObjectStore
from tests.tcp_proxy import TcpProxy


async def test_put_get_delete_round_trip(servers: Settings, unique: str) -> None:
    body = os.urandom(256 * 1024)
    async with ObjectStore(servers.s3) as store:
        await store.put(f"{unique}/clip.mp3", body, content_type="audio/mpeg")
        assert await store.get(f"{unique}/clip.mp3") == body
        assert [k async for k in store.keys(prefix=unique)] == [f"{unique}/clip.mp3"]
        await store.delete(f"{unique}/clip.mp3")
        with pytest.raises(ObjectNotFound):
            await store.get(f"{unique}/clip.mp3")
        assert [k async for k in store.keys(prefix=unique)] == []


async def test_listing_spans_pages(servers: Settings, unique: str) -> None:
    async with ObjectStore(servers.s3) as store:
        keys = [f"{unique}/{i:04d}" for i in range(1005)]  # S3 pages hold 1000 keys
        for key in keys:
            await store.put(key, key.encode())
        try:
            assert [k async for k in store.keys(prefix=unique)] == keys
        finally:
            for key in keys:
                await store.delete(key)


async def test_a_body_cut_short_is_an_outage_and_the_same_get_then_succeeds(
    servers: Settings, unique: str
) -> None:
    # The object store dying mid-download: an outage, which the agents wait out in place,
    # never a refusal, which would dead-letter the track.
    body = os.urandom(1024 * 1024)
    proxy = TcpProxy(servers.s3.port)
    await proxy.start()
    through_proxy = servers.s3.model_copy(update={"port": proxy.port})
    try:
        async with ObjectStore(servers.s3) as direct, ObjectStore(through_proxy) as store:
            await direct.put(f"{unique}/clip.mp3", body, content_type="audio/mpeg")
            proxy.response_limit = 300 * 1024
            with pytest.raises(StoreUnavailable, match="S3 get") as cut:
                await store.get(f"{unique}/clip.mp3")
            assert cut.value.retriable
            proxy.response_limit = None
            assert await store.get(f"{unique}/clip.mp3") == body
            await direct.delete(f"{unique}/clip.mp3")
    finally:
        await proxy.stop()
