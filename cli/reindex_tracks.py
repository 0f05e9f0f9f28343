"""``spotrec reindex --from tracks``: extract every track again with the configured model version.

Reads the retained ``track-discovered.v1`` from its beginning and sends each track not yet
settled under the configured model version back into that topic, so the running workers fetch
its audio again and write a vector of the new version beside the old one. Then reads Cassandra
until every track indexed under another version has a vector of this one (or turned out to
have no usable audio), and builds, publishes and announces a complete snapshot. Query nodes
keep serving the old version's snapshot until that one arrives.

Positions are committed after every batch is sent, so an interrupted run resumes where it
stopped; running it again after it finished sends nothing. The copies it sends carry a header
with the model version, so a later run for the same model passes over them instead of sending
them once more (``--restart`` looks at every record again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from config.settings import Settings
from features.versions import model_spec, model_version_of
from schemas.decoding import decode
from schemas.errors import InvalidRecord
from schemas.tracks import TrackDiscoveredV1, check_track
from snapshots.coverage import Coverage, indexed_elsewhere, measure
from snapshots.indexer import rebuild_now
from stores.cassandra import CassandraSession
from stores.migrations import migrate
from stores.objects import ObjectStore
from stores.tracks import TrackStore
from streams.kafka_clients import started
from streams.names import TRACK_DISCOVERED
from streams.replay import Progress, ReplayOptions, print_progress, replay

#: Header on the records this command sends back, naming the model version they were sent for:
#: a resumed run passes over its own copies (some may still be in flight), while a reindex to
#: a later model treats them as ordinary records (after compaction they may be all that is left).
RESENT = "spotrec-reindex"
#: Seconds without a new vector before the command says what may be wrong.
STALL_HINT_S = 120.0
#: Shortest pause between two coverage readings; longer when a reading itself takes long.
POLL_S = 2.0


async def from_tracks(settings: Settings, options: ReplayOptions) -> int:
    """Run the reindex; returns the exit status."""
    model_version = model_version_of(settings.model)
    topic = settings.kafka.topic(TRACK_DISCOVERED)
    spec = model_spec(model_version)
    print(
        f"re-extracting every track with {model_version} ({spec.dim}-d vectors, compared by "
        f"{'cosine after z-scoring' if spec.retrieval_space == 'zscore' else 'plain cosine'}); "
        "the workers must run this model"
    )
    await migrate(settings.cassandra)
    async with CassandraSession(settings.cassandra) as db, ObjectStore(settings.s3) as objects:
        tracks = TrackStore(db, settings.cassandra.keyspace)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
        await started(producer)
        sent = settled = skipped = resent = 0
        marker = model_version.encode()
        try:

            async def resend(records: Sequence[Any]) -> None:
                nonlocal sent, settled, skipped, resent
                candidates: list[tuple[Any, str]] = []
                for record in records:
                    if not options.restart and (RESENT, marker) in (record.headers or ()):
                        resent += 1  # a copy an earlier run for this model already sent
                        continue
                    try:
                        track = decode(TrackDiscoveredV1, record.value or b"")
                        check_track(track)
                    except InvalidRecord:
                        skipped += 1  # parked in dead-letters.v1 when it was first consumed
                        continue
                    candidates.append((record, track.track_id))
                # The reads of a batch overlap instead of running one after another.
                done = await asyncio.gather(
                    *(tracks.settled(track_id, model_version) for _, track_id in candidates)
                )
                settled += sum(done)
                acks: list[Awaitable[Any]] = []
                for (record, _), is_settled in zip(candidates, done, strict=True):
                    if is_settled:
                        continue
                    # The record as it was: same key, so compaction still keeps one per track.
                    acks.append(
                        await producer.send(
                            topic, record.value, key=record.key, headers=[(RESENT, marker)]
                        )
                    )
                # Acknowledged before the replay commits past them: a crash re-sends, never loses.
                await asyncio.gather(*acks)
                sent += len(acks)

            progress = await replay(
                settings.kafka,
                topic,
                f"{settings.worker.app_id}.reindex-from-tracks",
                resend,
                options,
            )
        finally:
            await producer.stop()
        malformed = f", {skipped} malformed" if skipped else ""
        print(
            f"\n{TRACK_DISCOVERED}: {progress.records} records replayed, {sent} tracks sent to "
            f"the workers, {settled} already had a vector of {model_version} or no audio, "
            f"{resent} were copies sent by a reindex{malformed}"
        )
        coverage = await _wait_for_vectors(db, settings.cassandra.keyspace, model_version)
        print(f"\nevery track has a vector of {model_version} ({coverage.have} tracks)")
        update = await rebuild_now(db, objects, settings, model_version)
    if update is None:
        print(f"no snapshot built: no vectors of {model_version}, or another indexer is busy")
        return 1
    state = "complete" if update.complete else "incomplete (tracks arrived meanwhile)"
    print(f"snapshot {update.version}: {update.count} tracks of {model_version}, {state}")
    return 0 if update.complete else 1


async def _wait_for_vectors(db: CassandraSession, keyspace: str, model_version: str) -> Coverage:
    """Poll the coverage of ``model_version`` until nothing is missing, printing progress."""
    # The other versions' vectors do not change while this one is written: read them once.
    others = await indexed_elsewhere(db, keyspace, model_version)
    first = await measure(db, keyspace, model_version, others=others)
    # Progress counts vectors written since the wait began, against what was missing then.
    progress = Progress(model_version, total=first.missing)
    last_change = time.monotonic()
    hinted = False
    pause = POLL_S
    coverage = first
    while True:
        progress.done = max(0, first.missing - coverage.missing)
        print_progress(progress)
        if coverage.complete:
            return coverage
        if not hinted and time.monotonic() - last_change > STALL_HINT_S:
            hinted = True
            print(
                f"\nno new vector of {model_version} for {STALL_HINT_S:.0f} s: are workers "
                "running, with this model version (SPOTREC_MODEL_VERSION)?"
            )
        await asyncio.sleep(pause)
        started = time.monotonic()
        reading = await measure(db, keyspace, model_version, others=others)
        # A catalogue large enough to make a reading slow is read less often.
        pause = max(POLL_S, 4 * (time.monotonic() - started))
        if reading.missing != coverage.missing:
            last_change = time.monotonic()
        coverage = reading
