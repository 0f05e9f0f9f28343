"""The recommendation routes of a query node serving a real snapshot from S3.

One snapshot of the synthetic catalogue (many artists, several copies of some recordings: see
``tests.catalogues``) is built, published to the real object store and loaded by an in-process
query node; the tests then speak HTTP to it: ``/recommend`` (GET and POST), ``/path``,
``/recommend/audio``'s refusals and the OpenSubsonic routes.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any
from xml.etree import ElementTree

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import follower_key, settings_key
from config.settings import Settings
from features.versions import model_spec, model_version_of
from snapshots.builder import write_snapshot
from snapshots.store import SnapshotStore
from stores.objects import ObjectStore, ensure_bucket
from tests.catalogues import Catalogue, tracks
from tests.pipelines import remove_deployment

Client = TestClient[web.Request, web.Application]
#: A small cap, so the 413 test needs no large upload.
UPLOAD_CAP = 64 * 1024


@pytest.fixture(scope="module")
async def node(
    servers: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Client]:
    """One node for the module: the tests only read from it."""
    unique = f"t{uuid.uuid4().hex[:16]}"
    tmp_path = tmp_path_factory.mktemp(unique)
    settings = servers.model_copy(
        update={
            "s3": servers.s3.model_copy(update={"bucket": unique}),
            "kafka": servers.kafka.model_copy(update={"topic_prefix": f"{unique}."}),
            "index": servers.index.model_copy(update={"cache_dir": tmp_path / "cache"}),
            "api": servers.api.model_copy(update={"max_upload_bytes": UPLOAD_CAP}),
        }
    )
    model_version = model_version_of(settings.model)
    built = await asyncio.to_thread(
        write_snapshot,
        tmp_path / "build",
        tracks(dim=model_spec(model_version).dim).tracks,
        model_version=model_version,
        trees=10,
        source_mark=1,
    )
    try:
        await ensure_bucket(settings.s3)
        async with ObjectStore(settings.s3) as objects:
            key = await SnapshotStore(objects).publish(built)
        async with TestClient(TestServer(create_app(settings))) as client:
            assert await client.app[follower_key].load(key)
            yield client
    finally:
        await remove_deployment(settings, unique)  # its bucket and its broadcast topic


@pytest.fixture
def catalogue() -> Catalogue:
    return tracks()


def _ids(body: dict[str, Any], key: str = "results") -> list[str]:
    return [r["track_id"] for r in body[key]]


async def _post(node: Client, body: object) -> tuple[int, dict[str, Any]]:
    response = await node.post("/recommend", json=body)
    return response.status, await response.json()


async def test_several_weighted_seeds_with_exclusions(node: Client, catalogue: Catalogue) -> None:
    ready = await (await node.get("/readyz")).json()
    status, body = await _post(
        node,
        {
            "seeds": ["isrc:QZ0000000001", {"track_id": "isrc:QZ0000000050", "weight": 2}],
            "negative": ["isrc:QZ0000000007"],
            "k": 30,
            "exclude_artists": ["artist 02"],
            "exclude_tracks": ["isrc:QZ0000000003", "isrc:NOT-THERE"],
            "max_per_artist": 2,
        },
    )
    assert status == 200, body
    assert body["snapshot"] == ready["snapshot"]
    assert body["complete"] and body["short_reason"] is None
    got = _ids(body)
    assert len(got) == 30 == len(set(got))
    assert not {"isrc:QZ0000000001", "isrc:QZ0000000050", "isrc:QZ0000000007"} & set(got)
    assert "isrc:QZ0000000003" not in got
    artists = [r["artists"][0] for r in body["results"] if r["artists"]]
    assert "Artist 02" not in artists
    assert max(artists.count(a) for a in artists) <= 2
    recordings = [catalogue.recording[t] for t in got]
    assert len(set(recordings)) == len(recordings)
    # Diversity reorders towards novelty but keeps every rule.
    status, diverse = await _post(
        node, {"seeds": ["isrc:QZ0000000001"], "k": 10, "diversity": 0.7, "max_per_artist": 1}
    )
    assert status == 200 and len(diverse["results"]) == 10
    plain = await (await node.get("/recommend", params={"track_id": "isrc:QZ0000000001"})).json()
    assert _ids(diverse) != _ids(plain)


async def test_searches_run_in_the_nodes_own_bounded_pool(node: Client) -> None:
    # Two seeds: a query by vector, which the engine searches off the event loop, in the pool
    # that api.query_threads sizes (its threads are named after it).
    seeds = ["isrc:QZ0000000003", "isrc:QZ0000000040"]
    status, body = await _post(node, {"seeds": seeds, "k": 5})
    assert status == 200, body
    assert len(body["results"]) == 5
    pool = [t.name for t in threading.enumerate() if t.name.startswith("query_")]
    assert pool
    assert len(pool) <= node.app[settings_key].api.query_threads


async def test_one_copy_of_each_recording_unless_asked(node: Client) -> None:
    # Recording 0 exists as isrc:, local: (same digest), deezer: (same ISRC) and url: (same
    # vector): asked from one copy, none of the others comes back.
    seed = "local:" + f"{0:064x}"
    body = await (await node.get("/recommend", params={"track_id": seed, "k": 20})).json()
    assert not {"isrc:QZ0000000000", "deezer:0", "url:0"} & set(_ids(body))
    # Recording 36's copies collapse into the best-known one, which lists the others.
    shown = {r["track_id"]: r for r in body["results"]}
    for result in body["results"]:
        assert not (result["track_id"].startswith(("local:", "url:")) and result["duplicates"])
    if "isrc:QZ0000000036" in shown:
        assert set(shown["isrc:QZ0000000036"]["duplicates"]) == {"url:36", "local:" + f"{36:064x}"}
    body = await (
        await node.get("/recommend", params={"track_id": seed, "k": 3, "duplicates": "include"})
    ).json()
    assert set(_ids(body)) == {"isrc:QZ0000000000", "deezer:0", "url:0"}
    assert all(r["score"] > 0.999 for r in body["results"])


async def test_k_results_whenever_possible_and_a_short_answer_says_why(node: Client) -> None:
    # 36 jazz recordings by 6 artists: with one per artist only 6 exist.
    status, body = await _post(
        node, {"seeds": ["isrc:QZ0000000000"], "k": 20, "tags": ["Jazz"], "max_per_artist": 1}
    )
    assert status == 200
    assert len(body["results"]) == 6
    assert not body["complete"]
    assert "only 6" in body["short_reason"] and "per artist" in body["short_reason"]
    status, body = await _post(node, {"seeds": ["isrc:QZ0000000000"], "k": 35, "tags": ["jazz"]})
    assert len(body["results"]) == 35 and body["complete"]
    assert all("jazz" in {t for t, _ in r["tags"]} for r in body["results"])


async def test_bad_requests_name_the_field_and_unknown_ids_are_listed(node: Client) -> None:
    for body, words in [
        ({}, "seeds: Field required"),
        ({"seeds": []}, "seeds"),
        ({"seeds": ["a"] * 26}, "seeds"),
        ({"seeds": ["isrc:QZ0000000000"], "k": 0}, "k:"),
        ({"seeds": ["isrc:QZ0000000000"], "k": "many"}, "k:"),
        ({"seeds": [{"track_id": "isrc:QZ0000000000", "weight": -1}]}, "weight"),
        ({"seeds": ["isrc:QZ0000000000"], "diversity": 2}, "diversity"),
        ({"seeds": ["isrc:QZ0000000000"], "tags": ["polka"]}, "unknown tag"),
        ({"seeds": ["isrc:QZ0000000000"], "duplicates": "some"}, "duplicates"),
        ({"seeds": ["isrc:QZ0000000000"], "exclude_artist": ["x"]}, "exclude_artist: unknown"),
        (["isrc:QZ0000000000"], "JSON object"),
    ]:
        status, answer = await _post(node, body)
        assert status == 400, body
        assert words in answer["error"], (body, answer)
    response = await node.post(
        "/recommend", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert "JSON" in (await response.json())["error"]
    status, answer = await _post(
        node, {"seeds": ["isrc:QZ0000000000", "isrc:NOPE"], "negative": ["isrc:NEITHER"]}
    )
    assert status == 404
    assert answer["unknown"] == ["isrc:NOPE", "isrc:NEITHER"]
    assert "not in snapshot" in answer["error"]
    status, answer = await _post(
        node, {"seeds": ["isrc:QZ0000000000"], "negative": ["isrc:QZ0000000000"]}
    )
    assert status == 400 and "both seeds and negatives" in answer["error"]


async def test_get_with_repeated_seeds_matches_post(node: Client) -> None:
    params = [
        ("track_id", "isrc:QZ0000000005"),
        ("track_id", "isrc:QZ0000000009"),
        ("k", "12"),
        ("exclude_artist", "Artist 10"),
        ("tag", "rock"),
        ("tag", "pop"),
    ]
    got = await (await node.get("/recommend", params=params)).json()
    _, posted = await _post(
        node,
        {
            "seeds": ["isrc:QZ0000000005", "isrc:QZ0000000009"],
            "k": 12,
            "exclude_artists": ["Artist 10"],
            "tags": ["rock", "pop"],
        },
    )
    assert _ids(got) == _ids(posted) and len(_ids(got)) == 12
    assert got["track_id"] == "isrc:QZ0000000005" and got["tag"] == "rock"


async def test_paths_move_from_one_track_to_the_other(node: Client, catalogue: Catalogue) -> None:
    start, end = "isrc:QZ0000000000", "isrc:QZ0000000010"
    response = await node.get("/path", params={"from": start, "to": end, "steps": "8"})
    assert response.status == 200
    body = await response.json()
    got = _ids(body, "path")
    assert len(got) == 8 and got[0] == start and got[-1] == end
    recordings = [catalogue.recording[t] for t in got]
    assert len(set(recordings)) == 8  # no track, nor copy of one, twice
    # The path drifts away from the start: the second half is further from it than the first.
    closeness = [step["from_start"] for step in body["path"]]
    assert sum(closeness[1:4]) > sum(closeness[4:7])
    # Exclusions hold for the tracks between the ends.
    response = await node.get(
        "/path",
        params=[
            ("from", start),
            ("to", end),
            ("steps", "8"),
            ("exclude_track", got[1]),
            ("exclude_artist", body["path"][2]["artists"][0]),
        ],
    )
    excluded = await response.json()
    assert got[1] not in _ids(excluded, "path")
    assert all(body["path"][2]["artists"][0] not in s["artists"] for s in excluded["path"][1:-1])
    for params, status in [
        ({"from": start}, 400),
        ({"from": start, "to": end, "steps": "1"}, 400),
        ({"from": start, "to": start}, 400),
        ({"from": start, "to": "isrc:NOPE"}, 404),
    ]:
        response = await node.get("/path", params=params)
        assert response.status == status, params
        assert "error" in await response.json()


async def test_audio_uploads_too_large_or_not_audio_are_refused(node: Client) -> None:
    response = await node.post(
        "/recommend/audio", data=b"\0" * (UPLOAD_CAP + 1), headers={"Content-Type": "audio/wav"}
    )
    assert response.status == 413
    assert "larger than" in (await response.json())["error"]
    form = FormData()
    form.add_field("file", b"\0" * (UPLOAD_CAP + 1), filename="big.wav")
    assert (await node.post("/recommend/audio", data=form)).status == 413
    response = await node.post("/recommend/audio", data=b"")
    assert response.status == 400
    response = await node.post("/recommend/audio", params={"k": "0"}, data=b"x")
    assert response.status == 400 and "k:" in (await response.json())["error"]


async def test_opensubsonic_sonic_similarity(node: Client, catalogue: Catalogue) -> None:
    for route in ("/rest/getOpenSubsonicExtensions", "/rest/getOpenSubsonicExtensions.view"):
        body = (await (await node.get(route, params={"f": "json"})).json())["subsonic-response"]
        assert body["status"] == "ok" and body["openSubsonic"] is True
        assert {"name": "sonicSimilarity", "versions": [1]} in body["openSubsonicExtensions"]
    ping = await (await node.get("/rest/ping.view", params={"f": "json"})).json()
    assert ping["subsonic-response"]["status"] == "ok"

    seed = "isrc:QZ0000000012"
    response = await node.get(
        "/rest/getSonicSimilarTracks", params={"id": seed, "count": "7", "f": "json"}
    )
    body = (await response.json())["subsonic-response"]
    matches = body["sonicMatch"]
    assert len(matches) == 7
    assert seed not in {m["entry"]["id"] for m in matches}
    sims = [m["similarity"] for m in matches]
    assert sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
    assert all(m["entry"]["isDir"] is False and m["entry"]["title"] for m in matches)
    same = await (await node.get("/recommend", params={"track_id": seed, "k": "7"})).json()
    assert [m["entry"]["id"] for m in matches] == _ids(same)

    # XML is Subsonic's default format; POST forms work too.
    response = await node.post("/rest/getSonicSimilarTracks.view", data={"id": seed, "count": "3"})
    root = ElementTree.fromstring(await response.read())
    ns = "{http://subsonic.org/restapi}"
    assert root.tag == f"{ns}subsonic-response" and root.get("status") == "ok"
    entries = root.findall(f"{ns}sonicMatch/{ns}entry")
    assert [e.get("id") for e in entries] == _ids(same)[:3]

    start, end = "isrc:QZ0000000000", "isrc:QZ0000000010"
    response = await node.get(
        "/rest/findSonicPath.view",
        params={"startSongId": start, "endSongId": end, "count": "6", "f": "json"},
    )
    path = (await response.json())["subsonic-response"]["sonicMatch"]
    ids = [m["entry"]["id"] for m in path]
    assert len(ids) == 6 and ids[0] == start and ids[-1] == end and len(set(ids)) == 6
    assert path[0]["similarity"] == 1.0

    for route, params, code in [
        ("getSonicSimilarTracks", {"id": "isrc:NOPE"}, 70),
        ("getSonicSimilarTracks", {}, 10),
        ("findSonicPath", {"startSongId": start}, 10),
        ("findSonicPath", {"startSongId": start, "endSongId": "isrc:NOPE"}, 70),
    ]:
        response = await node.get(f"/rest/{route}", params={**params, "f": "json"})
        failed = (await response.json())["subsonic-response"]
        assert failed["status"] == "failed", (route, params)
        assert failed["error"]["code"] == code
