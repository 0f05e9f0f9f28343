"""Playlists in, recommendations out: the whole pipeline on the real servers.

The tests run in file order on one shared pipeline (see ``conftest.py``): the first ingests the
fake Spotify and Deezer playlists and a local folder and waits until every track answers; the
others check what the pipeline then does with repeats, malformed events and forbidden URLs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import FormData
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from config.settings import Settings
from schemas.dead_letters import DeadLetter, read_dead_letter
from schemas.tracks import TrackDiscoveredV1
from streams.names import DEAD_LETTERS, PLAYLISTS, TRACK_DISCOVERED
from tests.fakes.catalogue import DEEZER_UNREADABLE, DEEZER_WITHOUT_ISRC
from tests.integration.pipeline.conftest import Pipeline
from tests.pipelines import NO_AUDIO, catalogue_track_ids, produce_playlists, until

#: Generous: the worker loads TensorFlow and the weights before its first batch.
INGEST_DEADLINE_S = 420.0


async def _produce(
    settings: Settings, topic: str, values: list[bytes], key: bytes | None = None
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.kafka.topic(topic), value, key=key)
    finally:
        await producer.stop()


async def _end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap)
    await consumer.start()
    # Let the consumer's background task start: aiokafka 0.14 raises CancelledError from
    # stop() when that task is cancelled before it ever ran.
    await asyncio.sleep(0)
    try:
        name = settings.kafka.topic(topic)
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


def expected_track_ids(p: Pipeline) -> set[str]:
    """Every track the three playlists yield with audio (see :func:`catalogue_track_ids`)."""
    return catalogue_track_ids(p.catalogue)


async def test_503_before_the_first_snapshot(pipeline: Pipeline) -> None:
    response = await pipeline.api.get("/recommend", params={"track_id": "isrc:X"})
    assert response.status == 503
    assert "no index snapshot" in (await response.json())["error"]
    assert (await pipeline.api.get("/readyz")).status == 503


async def test_playlists_in_recommendations_out(pipeline: Pipeline) -> None:
    p = pipeline
    await produce_playlists(
        p.env,
        [
            p.catalogue.spotify_playlist_id,
            f"deezer:{p.catalogue.deezer_playlist_id}",
            f"local:{p.catalogue.audio_dir / 'clips'}",
        ],
    )

    expected = expected_track_ids(p)

    async def all_indexed() -> dict[str, Any] | None:
        # In the snapshot itself, not only in the fresh segment: the answers below must all
        # come from the snapshot listed, with no rebuild left to swap in.
        ready = await p.api.get("/readyz")
        if ready.status != 200 or (await ready.json())["count"] != len(expected):
            return None
        response = await p.api.get("/tracks", params={"limit": 1000})
        if response.status != 200:
            return None
        body: dict[str, Any] = await response.json()
        return body if {t["track_id"] for t in body["tracks"]} == expected else None

    listing = await until(all_indexed, INGEST_DEADLINE_S, "every track indexed", p.worker_log)
    assert listing["total"] == len(expected)

    for track_id in sorted(expected):
        response = await p.api.get("/recommend", params={"track_id": track_id, "k": 5})
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["track_id"] == track_id
        assert body["snapshot"] == listing["snapshot"]
        results = body["results"]
        assert len(results) == 5
        assert track_id not in {r["track_id"] for r in results}
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)
        assert all(r["name"] for r in results)

    # The same recording reached through Spotify (by ISRC) and through a local file has the
    # same audio, hence the same vector: each is the other's nearest neighbour when copies are
    # asked for, and by default a copy of the seed never comes back.
    for clip in p.catalogue.clips:
        if clip.name in NO_AUDIO:
            continue
        seed = f"isrc:{clip.isrc}"
        response = await p.api.get(
            "/recommend", params={"track_id": seed, "k": 1, "duplicates": "include"}
        )
        (best,) = (await response.json())["results"]
        twins = {f"local:{clip.sha256}"}
        if clip.name == DEEZER_WITHOUT_ISRC:  # also reached through Deezer, by its Deezer id
            twins.add(f"deezer:{clip.deezer_id}")
        assert best["track_id"] in twins, clip.name
        assert best["score"] > 0.999
        for query in (seed, *twins):
            response = await p.api.get("/recommend", params={"track_id": query, "k": 5})
            results = (await response.json())["results"]
            assert len(results) == 5
            assert not ({seed} | twins) & {r["track_id"] for r in results}, clip.name
            assert all(r["score"] < 0.999 for r in results)

    # Tracks without audio are recorded with the reason, not dropped.
    response = await p.api.get("/tracks/unavailable", params={"limit": 1000})
    reasons = {t["track_id"]: t["reason"] for t in (await response.json())["tracks"]}
    unreadable = f"isrc:{p.catalogue.clip(DEEZER_UNREADABLE).isrc}"
    assert "not readable" in reasons[unreadable]
    unknown = p.catalogue.clip(DEEZER_WITHOUT_ISRC).isrc
    assert f"Deezer has no track with ISRC {unknown}" in reasons[f"isrc:{unknown}"]
    assert (await p.api.get("/recommend", params={"track_id": unreadable})).status == 404


async def test_recommendations_from_an_uploaded_clip(pipeline: Pipeline) -> None:
    p = pipeline
    clip = next(c for c in p.catalogue.clips if c.name not in NO_AUDIO)
    copies = {f"isrc:{clip.isrc}", f"local:{clip.sha256}"}
    form = FormData()
    form.add_field("file", clip.data, filename=clip.path.name, content_type=clip.content_type)
    response = await p.api.post("/recommend/audio", params={"k": 3}, data=form)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["model"] == (await (await p.api.get("/readyz")).json())["model"]
    assert len(body["results"]) == 3
    # The clip is in the library: its own recording comes first, once, in the same space.
    best = body["results"][0]
    assert {best["track_id"], *best["duplicates"]} >= copies
    assert best["score"] > 0.999
    # The raw body works too, and gives the same answer.
    response = await p.api.post(
        "/recommend/audio",
        params={"k": 3},
        data=clip.data,
        headers={"Content-Type": clip.content_type},
    )
    assert [r["track_id"] for r in (await response.json())["results"]] == [
        r["track_id"] for r in body["results"]
    ]
    response = await p.api.post(
        "/recommend/audio", data=b"not audio " * 500, headers={"Content-Type": "audio/mpeg"}
    )
    assert response.status == 415
    assert "cannot be decoded" in (await response.json())["error"]


async def test_ingesting_the_same_playlist_again_adds_nothing(pipeline: Pipeline) -> None:
    p = pipeline
    before = await _end_offsets(p.settings, TRACK_DISCOVERED)
    served = (await (await p.api.get("/readyz")).json())["snapshot"]
    spotify_pages_before = p.spotify.count("/v1/playlists/")
    await _produce(p.settings, PLAYLISTS, [p.catalogue.spotify_playlist_id.encode()])

    async def crawled_again() -> bool:
        return p.spotify.count("/v1/playlists/") > spotify_pages_before

    await until(crawled_again, 60, "the playlist to be crawled again", p.worker_log)
    await asyncio.sleep(5)  # time for any event the crawl would have sent to arrive
    assert await _end_offsets(p.settings, TRACK_DISCOVERED) == before
    await asyncio.sleep(p.settings.index.interval_s * 2)
    ready = await (await p.api.get("/readyz")).json()
    assert ready["snapshot"] == served, "no vector changed, so no new snapshot"


async def test_malformed_events_go_to_the_dead_letter_topic(pipeline: Pipeline) -> None:
    p = pipeline
    consumer = AIOKafkaConsumer(
        p.settings.kafka.topic(DEAD_LETTERS),
        bootstrap_servers=p.settings.kafka.bootstrap,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        await _produce(p.settings, PLAYLISTS, [b"\xff\xfe not a playlist"])
        await _produce(p.settings, TRACK_DISCOVERED, [b'{"track_id": 42}'], key=b"bad")
        letters: list[DeadLetter] = []

        async def both_dead_lettered() -> bool:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                letters.extend(read_dead_letter(m.value or b"") for m in messages)
            return {d.topic for d in letters} >= {
                p.settings.kafka.topic(PLAYLISTS),
                p.settings.kafka.topic(TRACK_DISCOVERED),
            }

        await until(both_dead_lettered, 60, "two dead letters", p.worker_log)
    finally:
        await consumer.stop()
    by_topic = {d.topic.removeprefix(p.settings.kafka.topic_prefix): d for d in letters}
    assert "UTF-8" in by_topic[PLAYLISTS].reason
    assert by_topic[PLAYLISTS].agent == "crawl_playlists"
    assert by_topic[PLAYLISTS].value == b"\xff\xfe not a playlist"  # the exact bytes
    track = by_topic[TRACK_DISCOVERED]
    assert "track_id" in track.reason
    assert track.value == b'{"track_id": 42}'
    assert track.key == b"bad"
    assert track.offset >= 0


async def test_a_disallowed_audio_url_is_refused(pipeline: Pipeline) -> None:
    p = pipeline
    # The fake Spotify server, named by a host that is not on the allow-list.
    port = p.spotify.base_url.rsplit(":", 1)[1]
    forbidden = f"http://localhost:{port}/preview/trumpet"
    requests_before = len(p.spotify.requests)
    track = TrackDiscoveredV1(
        track_id="spotify:forbiddenhost0000000",
        name="Forbidden host",
        artists=["Nobody"],
        source="spotify",
        source_ref="forbiddenhost0000000",
        audio_refs=[f"url:{forbidden}"],
    )
    await _produce(p.settings, TRACK_DISCOVERED, [track.dumps()], key=track.track_id.encode())

    async def listed_unavailable() -> dict[str, Any] | None:
        response = await p.api.get("/tracks/unavailable", params={"limit": 1000})
        body = await response.json()
        return next((t for t in body["tracks"] if t["track_id"] == track.track_id), None)

    row = await until(listed_unavailable, 60, "the refused track to be listed", p.worker_log)
    assert "localhost" in row["reason"]
    assert "allow" in row["reason"].lower()
    assert len(p.spotify.requests) == requests_before, "the forbidden URL was contacted"


async def test_bad_requests_get_json_4xx(pipeline: Pipeline) -> None:
    api = pipeline.api
    for params, status, words in [
        ({}, 400, "track_id is required"),
        ({"track_id": "isrc:X", "k": "abc"}, 400, "integer"),
        ({"track_id": "isrc:X", "k": "0"}, 400, "between 1 and 100"),
        ({"track_id": "isrc:X", "k": "101"}, 400, "between 1 and 100"),
        ({"track_id": "isrc:NOPE"}, 404, "not in snapshot"),
    ]:
        response = await api.get("/recommend", params=params)
        assert response.status == status, params
        assert words in (await response.json())["error"]
    response = await api.get("/tracks", params={"limit": "-1"})
    assert response.status == 400
    response = await api.get("/no-such-route")
    assert response.status == 404
    assert "error" in await response.json()
