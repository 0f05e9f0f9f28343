"""When the indexer builds: on a schedule, or sooner once enough tracks were extracted.

Reads the ``features-extracted.v1`` partitions' offsets (how many records arrived since a time)
from Kafka; writes nothing. With the query nodes' fresh tier serving new tracks within seconds,
a snapshot need not follow every change: it is rebuilt when the newest one is older than
``SPOTREC_INDEX_REBUILD_AFTER_S``, or when ``SPOTREC_INDEX_REBUILD_CHANGES`` records arrived
since it was built, whichever comes first.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from config.settings import Settings
from snapshots.manifest import Manifest
from streams.kafka_clients import started
from streams.names import FEATURES_EXTRACTED
from streams.partitions import partitions_of

logger = logging.getLogger(__name__)


async def extracted_since(settings: Settings, since: datetime) -> int:
    """Records on ``features-extracted.v1`` newer than ``since`` (0 when the topic is absent)."""
    topic = settings.kafka.topic(FEATURES_EXTRACTED)
    partitions = await partitions_of(settings.kafka.bootstrap, topic)
    assigned = [TopicPartition(topic, p) for p in partitions]
    if not assigned:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=None)
    await started(consumer)
    try:
        ends = await consumer.end_offsets(assigned)
        found = await consumer.offsets_for_times(
            {tp: int(since.timestamp() * 1000) for tp in assigned}
        )
        return sum(ends[tp] - found[tp].offset for tp in assigned if found.get(tp) is not None)
    finally:
        await consumer.stop()


async def due(settings: Settings, newest: Manifest | None, now: datetime | None = None) -> bool:
    """Whether changed vectors warrant a build now, given the newest published snapshot."""
    if newest is None:
        return True
    now = now or datetime.now(UTC)
    age = (now - newest.built_at).total_seconds()
    if age >= settings.index.rebuild_after_s:
        return True
    changes = await extracted_since(settings, newest.built_at)
    if changes >= settings.index.rebuild_changes:
        return True
    logger.debug(
        "snapshot %s is %.0f s old with %d records since; next build within %.0f s or at %d",
        newest.version,
        age,
        changes,
        settings.index.rebuild_after_s - age,
        settings.index.rebuild_changes,
    )
    return False
