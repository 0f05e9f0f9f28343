"""Every topic of the pipeline, declared once with its versioned name.

Reads the Faust app and settings from ``streams.app``. All topics carry raw bytes: each agent
decodes its input itself, so a message it cannot read goes to ``dead-letters.v1`` with the
reason instead of ending the agent's loop (Faust throws decode errors into the stream).
Pipeline topics are keyed by track id, so one track's events stay in one partition.
"""

from __future__ import annotations

from faust.types import TopicT

from streams.app import app, settings
from streams.names import (
    AUDIO_STORED,
    DEAD_LETTERS,
    FEATURES_EXTRACTED,
    INDEX_UPDATED,
    PLAYLISTS,
    TRACK_DISCOVERED,
)
from streams.provision import topic_partitions


def _raw_topic(name: str) -> TopicT:
    return app.topic(
        settings.kafka.topic(name),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=_partitions[settings.kafka.topic(name)],
    )


# Partition counts as provisioned (``streams.provision``): the same for every topic an agent
# reads, one for the broadcast to query nodes.
_partitions = topic_partitions(settings)
playlists_topic = _raw_topic(PLAYLISTS)
track_discovered_topic = _raw_topic(TRACK_DISCOVERED)
audio_stored_topic = _raw_topic(AUDIO_STORED)
features_extracted_topic = _raw_topic(FEATURES_EXTRACTED)
dead_letters_topic = _raw_topic(DEAD_LETTERS)
index_updated_topic = _raw_topic(INDEX_UPDATED)
