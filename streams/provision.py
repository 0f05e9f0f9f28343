"""Creates the pipeline's topics before a worker subscribes to them.

Reads the ``kafka`` settings; creates each missing topic with the configured partition count and
refuses to run on a topic whose count differs (Faust requires one count for every topic an
agent reads). A worker that subscribes to a topic before it exists only sees it at the next
metadata refresh, minutes later, so the worker command calls this first.
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from config.settings import KafkaSettings
from streams.names import (
    AUDIO_STORED,
    DEAD_LETTERS,
    FEATURES_EXTRACTED,
    INDEX_UPDATED,
    PLAYLISTS,
    TRACK_DISCOVERED,
)

#: Topics kept for replay are compacted: the newest record per key stays forever, so
#: ``spotrec reindex`` can rebuild from them however old the catalogue is. Keys are the track id
#: (track-discovered) and the track id with the model version (features-extracted).
COMPACTED = frozenset({TRACK_DISCOVERED, FEATURES_EXTRACTED})


def topic_partitions(settings: KafkaSettings) -> dict[str, int]:
    """Every topic's full name and partition count."""
    counts = {
        name: settings.topic_partitions
        for name in (PLAYLISTS, TRACK_DISCOVERED, AUDIO_STORED, FEATURES_EXTRACTED, DEAD_LETTERS)
    }
    counts[INDEX_UPDATED] = 1  # a broadcast: one partition keeps versions in order
    return {settings.topic(name): count for name, count in counts.items()}


async def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create the missing topics; returns the names created.

    Raises:
        RuntimeError: A topic exists with another partition count than configured.
    """
    wanted = topic_partitions(settings)
    compacted = {settings.topic(name) for name in COMPACTED}
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        for name in missing:
            # Another worker may create it between the listing and this call.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            name,
                            num_partitions=wanted[name],
                            replication_factor=1,
                            topic_configs={"cleanup.policy": "compact"}
                            if name in compacted
                            else {},
                        )
                    ]
                )
        present = [name for name in wanted if name in existing]
        for description in await admin.describe_topics(present) if present else []:
            name, count = description["topic"], len(description["partitions"])
            if count != wanted[name]:
                msg = (
                    f"topic {name} has {count} partitions but SPOTREC_KAFKA_TOPIC_PARTITIONS "
                    f"asks for {wanted[name]}; every topic an agent reads needs the same count"
                )
                raise RuntimeError(msg)
    finally:
        await admin.close()
    return missing
