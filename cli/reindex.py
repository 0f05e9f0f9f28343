"""``spotrec reindex --from features``: rebuild the vector store and a snapshot by replaying topics.

Reads the retained ``track-discovered.v1`` (track metadata) and ``features-extracted.v1``
(vectors) from their beginning; upserts tracks and vectors into Cassandra; builds, publishes and
announces a fresh snapshot of the configured model version, whatever the vectors' change mark
says (new index settings need a rebuild too). No audio is fetched. Positions are committed as it
goes, so an interrupted run resumes; ``--restart`` starts over. Every write is an upsert, so
running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from config.settings import Settings
from features.versions import model_version_of
from schemas.decoding import decode
from schemas.errors import InvalidRecord
from schemas.features import FeaturesExtractedV1, check_embedding
from schemas.snapshots import IndexUpdatedV1
from schemas.tracks import TrackDiscoveredV1
from snapshots.indexer import index_once
from stores.cassandra import CassandraSession
from stores.migrations import EMBEDDING_DIM, migrate
from stores.objects import ObjectStore
from stores.tracks import TrackStore
from streams.names import FEATURES_EXTRACTED, INDEX_UPDATED, TRACK_DISCOVERED
from streams.replay import Progress, replay


def register(subparsers: Any) -> None:
    """Add the reindex sub-command."""
    p = subparsers.add_parser(
        "reindex", help="rebuild the vector store and a snapshot by replaying retained topics"
    )
    p.add_argument(
        "--from",
        dest="source",
        choices=["features"],
        required=True,
        help="features: vectors from features-extracted (no audio is fetched)",
    )
    p.add_argument("--restart", action="store_true", help="replay from the beginning again")
    p.set_defaults(handler=_reindex)


def _report(progress: Progress) -> None:
    # One line rewritten in place on a terminal; a line per batch in a log.
    end = "\r" if sys.stdout.isatty() else "\n"
    print(progress.line(), end=end, flush=True)


def _reindex(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_from_features(settings, restart=args.restart))


async def _from_features(settings: Settings, *, restart: bool) -> int:
    model_version = model_version_of(settings.model)
    group = f"{settings.worker.app_id}.reindex-from-features"
    skipped = 0
    await migrate(settings.cassandra)  # a lost keyspace is recreated before it is refilled
    async with CassandraSession(settings.cassandra) as db, ObjectStore(settings.s3) as objects:
        tracks = TrackStore(db, settings.cassandra.keyspace)

        async def store_tracks(records: Sequence[Any]) -> None:
            nonlocal skipped
            for record in records:
                try:
                    track = decode(TrackDiscoveredV1, record.value or b"")
                except InvalidRecord:
                    skipped += 1  # parked in dead-letters.v1 when it was first consumed
                    continue
                await tracks.upsert_discovered(track)

        async def store_vectors(records: Sequence[Any]) -> None:
            nonlocal skipped
            stored: list[FeaturesExtractedV1] = []
            for record in records:
                try:
                    features = decode(FeaturesExtractedV1, record.value or b"")
                    check_embedding(features, EMBEDDING_DIM)
                except InvalidRecord:
                    skipped += 1
                    continue
                await tracks.upsert_embedding(
                    track_id=features.track_id,
                    model_version=features.model_version,
                    embedding=features.embedding,
                    tags={str(name): float(p) for name, p in features.tags},
                    audio_source=features.audio_source,
                    audio_sha256=features.audio_sha256,
                    extracted_at=datetime.fromtimestamp(features.extracted_at, UTC),
                )
                stored.append(features)
            for model_version in {features.model_version for features in stored}:
                await tracks.touch_model_version(model_version)
            for features in stored:
                await tracks.set_status(
                    features.track_id, "extracted", audio_source=features.audio_source
                )

        for topic, handle in (
            (TRACK_DISCOVERED, store_tracks),
            (FEATURES_EXTRACTED, store_vectors),
        ):
            progress = await replay(
                settings.kafka,
                settings.kafka.topic(topic),
                f"{group}.{topic}",
                handle,
                restart=restart,
                report=_report,
            )
            print(f"\n{topic}: {progress.records} records replayed")
        if skipped:
            print(f"skipped {skipped} malformed records")

        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
        await producer.start()
        try:

            async def broadcast(update: IndexUpdatedV1) -> None:
                await producer.send_and_wait(
                    settings.kafka.topic(INDEX_UPDATED),
                    update.dumps(),
                    key=model_version.encode(),
                )

            # A running worker's indexer may hold the lease for a moment: wait for it.
            wait = settings.index.lease_ttl_s + 5.0
            update = await index_once(
                db, objects, settings, model_version, broadcast, force=True, lease_wait_s=wait
            )
        finally:
            await producer.stop()
    if update is None:
        print(f"no snapshot built: no vectors of {model_version}, or another indexer is busy")
        return 1
    print(f"snapshot {update.version}: {update.count} tracks of {model_version}, announced")
    return 0
