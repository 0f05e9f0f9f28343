"""Search, one track's state and audio, the map and the status strip, on a real query node."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import cassandra_key
from tests.integration.explore.conftest import WAV, Node
from tests.pipelines import until


async def _search(node: Node, q: str, limit: int = 10) -> list[str]:
    response = await node.client.get("/search", params={"q": q, "limit": str(limit)})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["snapshot"] == node.version
    return [r["track_id"] for r in body["results"]]


async def test_search_is_case_and_accent_insensitive_with_prefixes_and_ranking(
    node: Node,
) -> None:
    # "beyonce" finds the accented and the plain spelling, in artists.
    assert set(await _search(node, "BEYONCE")) == {"t:halo", "t:crazy", "t:sasha"}
    # A prefix: "hal" is the start of "Halo" and "Halloween" (name and album).
    assert set(await _search(node, "hal")) == {"t:halo", "t:halloween"}
    # A whole word beats a prefix: "halo" is a word of one name only.
    assert await _search(node, "halo") == ["t:halo"]
    # Every word must match; words may come from different fields.
    assert await _search(node, "sasha halo") == ["t:halo"]
    assert await _search(node, "etude chop") == ["t:etude"]
    # A name match ranks before an album match.
    assert (await _search(node, "halloween"))[0] == "t:halloween"
    assert await _search(node, "beyonce", limit=1) and len(await _search(node, "bey", 1)) == 1
    # Not indexed, not found.
    assert await _search(node, "missing") == []


async def test_search_rejects_a_missing_or_long_query(node: Node) -> None:
    for params in ({}, {"q": "  "}, {"q": "x" * 201}, {"q": "a", "limit": "0"}):
        response = await node.client.get("/search", params=params)
        assert response.status == 400
        assert "error" in await response.json()


async def test_a_track_shows_its_pipeline_state_and_whether_it_is_served(node: Node) -> None:
    response = await node.client.get("/tracks/t:halo")
    assert response.status == 200
    body = await response.json()
    assert body["name"] == "Halo" and body["artists"] == ["Beyoncé"]
    assert body["status"] == "extracted" and body["reason"] is None
    assert body["model_versions"] == [node.model_version]
    assert body["in_snapshot"] is True and body["snapshot"] == node.version
    assert body["tags"][0] == ["rock", 0.5]
    assert len(body["xy"]) == 2
    assert body["audio"] == {"playable": True, "url": "/tracks/t:halo/audio"}

    gone = await (await node.client.get("/tracks/t:gone")).json()
    assert (gone["status"], gone["reason"]) == ("unavailable", "no preview")
    assert gone["in_snapshot"] is False and gone["model_versions"] == []
    assert gone["audio"]["playable"] is False

    # A file outside the allowed roots is not playable.
    etude = await (await node.client.get("/tracks/t:etude")).json()
    assert etude["audio"] == {"playable": False, "url": None}

    response = await node.client.get("/tracks/t:nope")
    assert response.status == 404
    assert "t:nope" in (await response.json())["error"]


async def test_audio_is_served_from_inside_the_roots_only(node: Node) -> None:
    response = await node.client.get("/tracks/t:halo/audio")
    assert response.status == 200
    assert response.content_type == "audio/wav"
    assert await response.read() == WAV
    for track_id in ("t:etude", "t:crazy", "t:nope"):
        response = await node.client.get(f"/tracks/{track_id}/audio")
        assert response.status == 404, track_id
        assert "error" in await response.json()


async def test_the_map_places_a_track_and_its_neighbours(node: Node) -> None:
    response = await node.client.get("/map", params={"track_id": "t:halo", "k": "3"})
    assert response.status == 200
    body = await response.json()
    assert body["total"] == 5 and len(body["points"]) == 5
    assert all(-1.0 <= p["x"] <= 1.0 and -1.0 <= p["y"] <= 1.0 for p in body["points"])
    highlight = body["highlight"]
    assert highlight["track"]["track_id"] == "t:halo"
    placed = {p["track_id"]: (p["x"], p["y"]) for p in body["points"]}
    assert (highlight["track"]["x"], highlight["track"]["y"]) == placed["t:halo"]
    assert len(highlight["neighbours"]) == 3
    assert "t:halo" not in {n["track_id"] for n in highlight["neighbours"]}
    sampled = await (await node.client.get("/map", params={"limit": "2"})).json()
    assert len(sampled["points"]) == 2 and sampled["highlight"] is None
    assert (await node.client.get("/map", params={"track_id": "t:gone"})).status == 404


async def test_status_names_the_snapshot_and_counts_the_pipeline(node: Node) -> None:
    response = await node.client.get("/status")
    assert response.status == 200
    body = await response.json()
    assert body["snapshot"]["version"] == node.version
    assert body["snapshot"]["count"] == 5 and body["snapshot"]["age_s"] >= 0
    assert body["search"]["ready"] is True and body["search"]["index"] == node.version
    assert body["pipeline"]["tracks"] == {
        "stored": 0,
        "extracted": 5,
        "unavailable": 1,
        "failed": 0,
    }
    assert body["pipeline"]["dead_letters"] == 0


async def test_without_cassandra_track_state_is_503_and_the_rest_answers(node: Node) -> None:
    async with TestClient(TestServer(create_app(node.settings))) as client:
        app = client.app
        # The driver's pools closed under the node, as when the database goes away.
        store = await app[cassandra_key].store()
        await asyncio.to_thread(store.db.session.cluster.shutdown)
        for path in ("/tracks/t:halo", "/tracks/t:halo/audio"):
            response = await client.get(path)
            assert response.status == 503, path
            assert "Cassandra is unreachable" in (await response.json())["error"]

        async def searchable() -> bool:
            return (await client.get("/search", params={"q": "halo"})).status == 200

        await until(searchable, 30, "the search index", interval_s=0.1)
        status = await (await client.get("/status")).json()
        assert status["pipeline"]["tracks"] is None
        assert status["snapshot"]["version"] == node.version
