"""Creates the pipeline's topics before a worker subscribes to them.

Reads the ``kafka`` and ``worker`` settings; creates each missing topic with the configured
partition count and refuses to run on a topic whose count differs (Faust requires one count for
every topic an agent reads). A worker that subscribes to a topic before it exists only sees it at
the next metadata refresh, minutes later, so the worker command calls this first.

The dead-letter topic's retention is set explicitly (``SPOTREC_KAFKA_DEAD_LETTER_RETENTION_MS``,
by default kept until deleted by hand), on creation and on every later run, so a topic created
with the broker's default (7 days) is corrected rather than left to lose what it holds.

Faust's own leader-election topic is created here too. Workers started together otherwise race
to create it, and a worker that loses the race can wait for ever on its second attempt and never
join the group; a topic that exists when the worker starts is never requested again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from config.settings import Settings
from streams.kafka_clients import started
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


#: The dead-letter topic's largest message, in bytes.
DEAD_LETTER_MAX_BYTES = 4 * 1024 * 1024

#: DescribeConfigs' source of a value set on the topic itself (not a broker default).
_TOPIC_SOURCE = 1


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """The topic configurations the pipeline sets, by full topic name."""
    kafka = settings.kafka
    configs = {kafka.topic(name): {"cleanup.policy": "compact"} for name in COMPACTED}
    configs[kafka.topic(DEAD_LETTERS)] = {
        "retention.ms": str(kafka.dead_letter_retention_ms),
        # A dead letter carries the whole refused message, base64 (a third bigger): room for
        # one of the broker's largest messages (1 MiB by default).
        "max.message.bytes": str(DEAD_LETTER_MAX_BYTES),
    }
    return configs


def leader_topic(app_id: str) -> str:
    """The topic through which Faust elects one worker of group ``app_id`` as leader."""
    return f"{app_id}-__assignor-__leader"


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Every topic's full name and partition count."""
    kafka = settings.kafka
    counts = {
        name: kafka.topic_partitions
        for name in (PLAYLISTS, TRACK_DISCOVERED, AUDIO_STORED, FEATURES_EXTRACTED, DEAD_LETTERS)
    }
    counts[INDEX_UPDATED] = 1  # a broadcast: one partition keeps versions in order
    wanted = {kafka.topic(name): count for name, count in counts.items()}
    # One partition, as Faust declares it: whoever holds it is the leader.
    wanted[leader_topic(settings.worker.app_id)] = 1
    return wanted


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics; returns the names created.

    Raises:
        RuntimeError: A topic exists with another partition count than configured.
    """
    wanted = topic_partitions(settings)
    configs = topic_configs(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await started(admin)
    try:
        existing = set(await admin.list_topics())
        missing = await _create(admin, existing, wanted, configs)
        dead_letters = settings.kafka.topic(DEAD_LETTERS)
        if dead_letters in existing:
            await _set_config(admin, dead_letters, configs[dead_letters])
        present = [name for name in wanted if name in existing]
        for description in await admin.describe_topics(present) if present else []:
            name, count = description["topic"], len(description["partitions"])
            if count != wanted[name]:
                msg = (
                    f"topic {name} has {count} partitions but the pipeline needs {wanted[name]} "
                    "(SPOTREC_KAFKA_TOPIC_PARTITIONS for every topic an agent reads, as Faust "
                    "requires one count for all of them; 1 for broadcasts)"
                )
                raise RuntimeError(msg)
    finally:
        await admin.close()
    return missing


async def create_missing(
    bootstrap: str,
    wanted: dict[str, int],
    configs: Mapping[str, dict[str, str]] | None = None,
) -> list[str]:
    """Create those of ``wanted`` (name -> partitions) that do not exist; returns them.

    For a process that needs one topic, not the worker's whole set (a query node). ``configs``
    gives some of them topic configurations.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await started(admin)
    try:
        return await _create(admin, set(await admin.list_topics()), wanted, configs or {})
    finally:
        await admin.close()


async def _set_config(admin: AIOKafkaAdminClient, topic: str, config: dict[str, str]) -> None:
    """Set ``config`` on an existing topic when it differs (other settings are kept)."""
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    (response,) = await admin.describe_configs([resource])
    current: dict[str, str] = {}
    for _error, _message, _type, _name, entries in response.resources:
        # (name, value, read-only, source, sensitive, synonyms); source 1: set on this topic.
        current.update({entry[0]: entry[1] for entry in entries if entry[3] == _TOPIC_SOURCE})
    if all(current.get(name) == value for name, value in config.items()):
        return
    # AlterConfigs replaces the topic's whole set: keep what was set before.
    await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, {**current, **config})]
    )


async def _create(
    admin: AIOKafkaAdminClient,
    existing: set[str],
    wanted: dict[str, int],
    configs: Mapping[str, dict[str, str]],
) -> list[str]:
    missing = [name for name in wanted if name not in existing]
    for name in missing:
        # Another process may create it between the listing and this call.
        with contextlib.suppress(TopicAlreadyExistsError):
            config = configs.get(name, {})
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=wanted[name],
                        replication_factor=1,
                        topic_configs=config,
                    )
                ]
            )
    return missing
