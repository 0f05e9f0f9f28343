"""``spotrec reindex``: rebuild the vector store and a snapshot by replaying retained topics.

``--from features`` reads the retained ``track-discovered.v1`` (track metadata) and
``features-extracted.v1`` (vectors) from their beginning; upserts tracks and vectors into
Cassandra; builds, publishes and announces a fresh snapshot of the configured model version,
whatever the vectors' change mark says (new index settings need a rebuild too). No audio is
fetched. ``--from tracks`` (in :mod:`cli.reindex_tracks`) sends every track through the workers
again, to extract it with a new model version.

Positions are committed as each replay goes, so an interrupted run resumes; ``--restart`` starts
over. Every write is an upsert, so running either twice changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cli.reindex_tracks import from_tracks
from config.settings import Settings
from features.versions import model_version_of
from schemas.decoding import decode
from schemas.errors import InvalidRecord
from schemas.features import FeaturesExtractedV1, check_embedding
from schemas.tracks import TrackDiscoveredV1
from snapshots.indexer import rebuild_now
from stores.cassandra import CassandraSession
from stores.migrations import migrate
from stores.objects import ObjectStore
from stores.tracks import TrackStore
from streams.names import FEATURES_EXTRACTED, TRACK_DISCOVERED
from streams.replay import ReplayOptions, replay


def register(subparsers: Any) -> None:
    """Add the reindex sub-command."""
    p = subparsers.add_parser(
        "reindex", help="rebuild the vector store and a snapshot by replaying retained topics"
    )
    p.add_argument(
        "--from",
        dest="source",
        choices=["features", "tracks"],
        required=True,
        help="features: vectors from features-extracted, no audio fetched (lost tables, new "
        "index settings); tracks: every track through the workers again, extracted with the "
        "configured model version (after a model change)",
    )
    p.add_argument("--restart", action="store_true", help="replay from the beginning again")
    p.add_argument(
        "--batch-size",
        type=_positive(int),
        default=500,
        help="records per batch and per committed position (default 500)",
    )
    p.add_argument(
        "--max-rate",
        type=_positive(float),
        default=None,
        help="most records per second, to spare a live deployment (default: no limit)",
    )
    p.set_defaults(handler=_reindex)


def _positive(kind: type[float] | type[int]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            msg = f"expected a positive {kind.__name__}, got {text!r}"
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse


def _reindex(args: argparse.Namespace, settings: Settings) -> int:
    options = ReplayOptions(
        restart=args.restart, batch_size=args.batch_size, max_rate=args.max_rate
    )
    run = _from_features if args.source == "features" else from_tracks
    try:
        return asyncio.run(run(settings, options))
    except KeyboardInterrupt:
        # Positions up to the last finished batch are committed: nothing is lost or redone.
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130


async def _from_features(settings: Settings, options: ReplayOptions) -> int:
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
                    check_embedding(features)
                except InvalidRecord:
                    skipped += 1
                    continue
                stored.append(features)
            await tracks.store_features(stored)

        for topic, handle in (
            (TRACK_DISCOVERED, store_tracks),
            (FEATURES_EXTRACTED, store_vectors),
        ):
            progress = await replay(
                settings.kafka,
                settings.kafka.topic(topic),
                f"{group}.{topic}",
                handle,
                options,
            )
            print(f"\n{topic}: {progress.records} records replayed")
        if skipped:
            print(f"skipped {skipped} malformed records")

        update = await rebuild_now(db, objects, settings, model_version)
    if update is None:
        print(f"no snapshot built: no vectors of {model_version}, or another indexer is busy")
        return 1
    print(f"snapshot {update.version}: {update.count} tracks of {model_version}, announced")
    return 0
