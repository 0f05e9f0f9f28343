"""The query node's fresh tier: follows ``features-extracted.v1`` into the fresh segment.

Reads ``features-extracted.v1`` (every partition, no consumer group: every node sees every
vector) and, when a track store is given, the names of new tracks from Cassandra; writes into
the holder's fresh segment. A track extracted after the served snapshot was built is queryable,
and returned as a neighbour, within a poll interval of its record, whatever the snapshot cadence.

It starts reading a little before the served snapshot's build time (its vectors are in the
snapshot; anything later is not), or at the end of the topic when no snapshot is served yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition

from api.background import cancel_and_wait
from api.snapshots import SnapshotHolder
from config.settings import Settings
from features.versions import model_version_of
from schemas.decoding import decode
from schemas.errors import InvalidRecord
from schemas.features import FeaturesExtractedV1, check_embedding
from snapshots.fresh import FreshTrack
from streams.kafka_clients import started
from streams.names import FEATURES_EXTRACTED
from streams.partitions import partitions_of

logger = logging.getLogger(__name__)

#: Start this long before the snapshot's build time: a vector written while the build read
#: the table may or may not be in it, and clocks differ a little.
START_MARGIN_S = 120.0
#: Records per poll, and how long a poll waits for the first one.
BATCH = 1000
POLL_MS = 100
#: Seconds the names of new tracks may take to read before they are served without.
DESCRIBE_TIMEOUT_S = 1.0
#: Seconds between looks for the topic before the first worker created it.
TOPIC_WAIT_S = 2.0

#: Names, artists and album of track ids (the ones it knows).
Names = dict[str, tuple[str | None, tuple[str, ...], str | None]]
Describe = Callable[[Sequence[str]], Awaitable[Names]]


class FreshFollower:
    """Consumes ``features-extracted.v1`` into a holder's fresh segment."""

    def __init__(
        self, settings: Settings, holder: SnapshotHolder, describe: Describe | None = None
    ) -> None:
        self.settings = settings
        self.holder = holder
        self.describe = describe
        self.model_version = model_version_of(settings.model)
        self.topic = settings.kafka.topic(FEATURES_EXTRACTED)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        #: Records taken into the segment and records passed over, since start.
        self.taken = 0
        self.skipped = 0
        #: Set once the partitions are assigned and positioned: later records are seen.
        self.assigned = asyncio.Event()

    async def start(self) -> None:
        """Start following in the background: never fails, retries while Kafka is away."""
        self._task = asyncio.create_task(self._run(), name="fresh-follower")

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=self.settings.kafka.bootstrap,
                    group_id=None,
                    enable_auto_commit=False,
                )
                self._consumer = consumer
                await started(consumer)
                await self._assign()
                failures = 0
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  # Kafka away or a topic deleted: retry
                failures += 1
                wait = min(self.settings.api.follower_backoff_max_s, 0.5 * 2 ** min(failures, 8))
                logger.warning(
                    "fresh tier: %s: %s (failure %d in a row; trying again in %.1f s)",
                    type(exc).__name__,
                    exc,
                    failures,
                    wait,
                )
                await self._close_consumer()
                await asyncio.sleep(wait)

    async def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _assign(self) -> None:
        # The workers create the topic (with its partitions and compaction); wait for it.
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            partitions = await partitions_of(self.settings.kafka.bootstrap, self.topic)
            if partitions:
                break
            await asyncio.sleep(TOPIC_WAIT_S)
        assigned = [TopicPartition(self.topic, p) for p in partitions]
        consumer.assign(assigned)
        current = self.holder.current
        if current is None:
            await consumer.seek_to_end(*assigned)
            for tp in assigned:  # resolve the end positions now, not at the first fetch
                await consumer.position(tp)
            self.assigned.set()
            return
        since = current.manifest.built_at.timestamp() - START_MARGIN_S
        # The ends are read first: a partition with no record since the build starts at the end
        # it had then, so a record produced while this runs is read, not skipped (a lazy
        # seek_to_end would resolve later, past it).
        ends = await consumer.end_offsets(assigned)
        found = await consumer.offsets_for_times({tp: int(since * 1000) for tp in assigned})
        for tp in assigned:
            at = found.get(tp)
            consumer.seek(tp, ends[tp] if at is None else at.offset)
        self.assigned.set()

    async def stop(self) -> None:
        """Stop following."""
        await cancel_and_wait(self._task)
        await self._close_consumer()

    async def _follow(self) -> None:
        # Assigned and positioned by the caller: assigning again here would seek again, and
        # skip what was produced in between when no snapshot is served yet.
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=POLL_MS, max_records=BATCH)
            records = [m for messages in batches.values() for m in messages]
            if records:
                await self.take([m.value or b"" for m in records])

    async def take(self, payloads: Sequence[bytes]) -> int:
        """Decode records and add the usable ones to the fresh segment; returns how many."""
        current = self.holder.current
        wanted = {self.model_version}
        if current is not None:
            wanted.add(current.manifest.model_version)
        tracks: list[FreshTrack] = []
        for payload in payloads:
            try:
                record = decode(FeaturesExtractedV1, payload)
                if current is not None:
                    check_embedding(record, current.manifest.dim)
            except InvalidRecord as exc:
                logger.warning("fresh tier: passing over a bad %s record: %s", self.topic, exc)
                self.skipped += 1
                continue
            if record.model_version not in wanted:
                self.skipped += 1
                continue
            tracks.append(
                FreshTrack(
                    track_id=record.track_id,
                    model_version=record.model_version,
                    raw=np.asarray(record.embedding, dtype=np.float32),
                    tags=tuple((str(t), float(p)) for t, p in record.tags),
                )
            )
        if tracks and self.describe is not None:
            tracks = await self._described(tracks)
        self.holder.add_fresh(tracks)
        self.taken += len(tracks)
        return len(tracks)

    async def _described(self, tracks: list[FreshTrack]) -> list[FreshTrack]:
        assert self.describe is not None
        try:
            # Names are a nicety: a slow or absent Cassandra must not hold the vectors back.
            async with asyncio.timeout(DESCRIBE_TIMEOUT_S):
                names = await self.describe([t.track_id for t in tracks])
        except Exception as exc:  # noqa: BLE001  # names are a nicety: never lose the vectors
            logger.warning("fresh tier: track names unavailable (%s); serving without", exc)
            return tracks
        described = []
        for track in tracks:
            name, artists, album = names.get(track.track_id, (None, (), None))
            described.append(
                FreshTrack(
                    track_id=track.track_id,
                    model_version=track.model_version,
                    raw=track.raw,
                    tags=track.tags,
                    name=name,
                    artists=artists,
                    album=album,
                )
            )
        return described
