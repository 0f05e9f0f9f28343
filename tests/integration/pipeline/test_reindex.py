"""``spotrec reindex --from features`` after losing the vector store: everything comes back.

Runs on the shared pipeline of this package: makes sure the catalogue is ingested, truncates
the tracks and embeddings tables, replays (interrupted with Ctrl-C part way, then resumed), and
checks the rows, the new snapshot, and that no audio was fetched again.
"""

from __future__ import annotations

import re
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from features.versions import model_spec
from stores.cassandra import CassandraSession
from stores.migrations import EMBEDDING_COLUMNS, embedding_column
from streams.names import AUDIO_STORED, FEATURES_EXTRACTED, PLAYLISTS, TRACK_DISCOVERED
from tests.integration.pipeline.conftest import Pipeline
from tests.pipelines import (
    catalogue_track_ids,
    interrupt_mid_replay,
    produce_playlists,
    run_cli,
    until,
)

#: Generous: if this test runs alone, the worker loads TensorFlow before its first batch.
INGEST_DEADLINE_S = 420.0


async def _vectors(db: CassandraSession, ks: str) -> dict[tuple[str, str], list[float]]:
    """Every stored vector, read from the column of its model's length."""
    columns = ", ".join(EMBEDDING_COLUMNS.values())
    rows = await db.execute(f"SELECT model_version, track_id, {columns} FROM {ks}.embeddings")
    return {
        (r["model_version"], r["track_id"]): list(
            r[embedding_column(model_spec(r["model_version"]).dim)]
        )
        for r in rows
    }


async def _worker_idle(p: Pipeline) -> bool:
    """Whether the worker has handled every record of the topics that lead to a vector.

    Events still queued when the tables are truncated would find their tracks unsettled and
    extract them again, adding records to the replayed topic and fetching audio.
    """
    kafka = p.settings.kafka
    topics = [kafka.topic(name) for name in (PLAYLISTS, TRACK_DISCOVERED, AUDIO_STORED)]
    partitions = [TopicPartition(t, i) for t in topics for i in range(kafka.topic_partitions)]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(p.settings.worker.app_id)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return all(
        end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items()
    )


async def _served(p: Pipeline) -> dict[str, Any] | None:
    """The indexed tracks, or None while no snapshot is loaded."""
    response = await p.api.get("/tracks", params={"limit": 1000})
    if response.status == 503:
        return None
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_reindex_from_features_rebuilds_a_lost_vector_store(pipeline: Pipeline) -> None:
    p = pipeline
    catalogue = catalogue_track_ids(p.catalogue)
    # Idempotent: whatever an earlier test ingested, producing the playlists again adds nothing.
    await produce_playlists(
        p.env,
        [
            p.catalogue.spotify_playlist_id,
            f"deezer:{p.catalogue.deezer_playlist_id}",
            f"local:{p.catalogue.audio_dir / 'clips'}",
        ],
    )

    async def indexed() -> dict[str, Any] | None:
        body = await _served(p)
        return body if body and catalogue <= {t["track_id"] for t in body["tracks"]} else None

    before = await until(indexed, INGEST_DEADLINE_S, "every track indexed", p.worker_log)
    # Earlier tests of the package may have ingested clips of their own into this deployment:
    # the vector store lost and rebuilt below is all of it.
    expected = {t["track_id"] for t in before["tracks"]}
    await until(
        lambda: _worker_idle(p), INGEST_DEADLINE_S, "the worker to handle every event", p.worker_log
    )
    ks = p.settings.cassandra.keyspace
    async with CassandraSession(p.settings.cassandra) as db:
        vectors = await _vectors(db, ks)
        names = {
            r["track_id"]: r["name"]
            for r in await db.execute(f"SELECT track_id, name FROM {ks}.tracks")
        }
        assert {track for _, track in vectors} == expected
        # The vector store is lost.
        await db.execute(f"TRUNCATE {ks}.embeddings")
        await db.execute(f"TRUNCATE {ks}.tracks")
    audio_requests = p.deezer.count("/cdn/preview/")

    # Interrupted part way through the vectors: some rows are back, not all.
    done_at, total, _ = await interrupt_mid_replay(
        p.env,
        p.settings.kafka.topic(FEATURES_EXTRACTED),
        "reindex",
        "--from",
        "features",
        "--batch-size",
        "3",
        "--max-rate",
        "10",
    )
    async with CassandraSession(p.settings.cassandra) as db:
        partial = await _vectors(db, ks)
    assert 0 < len(partial) < len(vectors)

    # Resumed: only what the first run had not committed is replayed.
    out = await run_cli(p.env, "reindex", "--from", "features")
    replayed = re.search(rf"{FEATURES_EXTRACTED}: (\d+) records replayed", out)
    assert replayed, out
    assert 0 < int(replayed.group(1)) <= total - done_at, out
    assert "/s" in out and "left" in out  # progress: done/total, rate, time left

    async with CassandraSession(p.settings.cassandra) as db:
        restored = await _vectors(db, ks)
        assert restored.keys() == vectors.keys()
        for key, vector in vectors.items():
            assert restored[key] == vector  # the same float32 values, bit for bit
        rows = await db.execute(f"SELECT track_id, name, audio_status FROM {ks}.tracks")
    back = {r["track_id"]: r for r in rows}
    for track_id in expected:
        assert back[track_id]["name"] == names[track_id]
        assert back[track_id]["audio_status"] == "extracted"
    assert p.deezer.count("/cdn/preview/") == audio_requests, "audio was fetched again"

    async def new_snapshot() -> dict[str, Any] | None:
        body = await _served(p)
        return body if body and body["snapshot"] != before["snapshot"] else None

    after = await until(new_snapshot, 30, "the rebuilt snapshot to be served")
    assert {t["track_id"] for t in after["tracks"]} == expected

    # Running it again replays nothing new and changes no row.
    again = await run_cli(p.env, "reindex", "--from", "features")
    assert f"{FEATURES_EXTRACTED}: 0 records replayed" in again
    async with CassandraSession(p.settings.cassandra) as db:
        assert await _vectors(db, ks) == restored
