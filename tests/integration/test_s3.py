"""The object store against the real SeaweedFS server: put, get, list and delete."""

from __future__ import annotations

import os

import pytest

from config.settings import Settings
from stores.objects import ObjectNotFound, ObjectStore


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
