"""``reindex --from tracks`` decides per record what to send back, on the real Kafka and Cassandra.

Runs against a deployment of its own with no worker: writes three ``track-discovered.v1``
records (an ordinary one, a copy an earlier reindex sent for the configured model, and a copy
sent for an older model, as compaction may leave it), runs the command, and reads back what it
sent to the topic.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from cli.reindex_tracks import RESENT
from config.settings import Settings
from features.versions import model_version_of
from schemas.tracks import TrackDiscoveredV1
from streams.names import TRACK_DISCOVERED
from streams.provision import ensure_topics
from tests.fakes.catalogue import build_catalogue
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.spotify_api import FakeSpotify
from tests.pipelines import isolated_deployment, new_run_id, remove_deployment, spotrec


def _track(n: int) -> TrackDiscoveredV1:
    return TrackDiscoveredV1(
        track_id=f"isrc:TEST0000000{n}",
        name=f"Song {n}",
        artists=["Someone"],
        source="spotify",
        source_ref=f"spotify:track:{n}",
        audio_refs=[f"deezer:isrc:TEST0000000{n}"],
    )


async def _copies(settings: Settings) -> list[tuple[str, tuple[tuple[str, bytes], ...]]]:
    """Every record of the topic, as (track id, headers)."""
    topic = settings.kafka.topic(TRACK_DISCOVERED)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.kafka.topic_partitions)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        found = []
        for tp in parts:
            while await consumer.position(tp) < ends[tp]:
                for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    found.append((record.key.decode(), tuple(record.headers)))
        return found
    finally:
        await consumer.stop()


async def test_own_copies_are_passed_over_and_older_models_copies_are_sent(
    servers: Settings, tmp_path: Path
) -> None:
    run = new_run_id("copies")
    catalogue = build_catalogue()
    async with FakeSpotify(catalogue) as spotify, FakeDeezer(catalogue) as deezer:
        settings, env = await isolated_deployment(
            servers, run=run, tmp=tmp_path, spotify=spotify, deezer=deezer
        )
    try:
        await ensure_topics(settings)
        current = model_version_of(settings.model).encode()
        topic = settings.kafka.topic(TRACK_DISCOVERED)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
        await producer.start()
        try:
            for n, headers in (
                (1, []),
                (2, [(RESENT, current)]),
                (3, [(RESENT, b"choi2017-older+decode")]),
            ):
                track = _track(n)
                await producer.send_and_wait(
                    topic, track.dumps(), key=track.track_id.encode(), headers=headers
                )
        finally:
            await producer.stop()

        status, out = await spotrec(env, "reindex", "--from", "tracks", deadline_s=120)
        # No worker and no vector anywhere: nothing to wait for, and no snapshot to build.
        assert status == 1, out
        assert re.search(r"3 records replayed, 2 tracks sent to the workers, 0 already", out), out
        assert "1 were copies sent by a reindex" in out
        records = await _copies(settings)
        assert Counter(key for key, _ in records) == {
            "isrc:TEST00000001": 2,
            "isrc:TEST00000002": 1,  # its copy for this model was passed over
            "isrc:TEST00000003": 2,  # a copy for another model is an ordinary record
        }
        marked = ((RESENT, current),)
        assert {("isrc:TEST00000001", marked), ("isrc:TEST00000003", marked)} <= set(records)

        # --restart looks at every record again, its own copies included.
        status, out = await spotrec(env, "reindex", "--from", "tracks", "--restart", deadline_s=120)
        assert status == 1, out
        assert re.search(r"5 records replayed, 5 tracks sent to the workers", out), out
    finally:
        await remove_deployment(settings, run)
