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


def _raw_topic(name: str, partitions: int) -> TopicT:
    return app.topic(
        settings.kafka.topic(name),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


# Every topic an agent reads has the same partition count, as Faust's tables require, and that
# count bounds how many workers can share the work.
_partitions = settings.kafka.topic_partitions
playlists_topic = _raw_topic(PLAYLISTS, _partitions)
track_discovered_topic = _raw_topic(TRACK_DISCOVERED, _partitions)
audio_stored_topic = _raw_topic(AUDIO_STORED, _partitions)
features_extracted_topic = _raw_topic(FEATURES_EXTRACTED, _partitions)
dead_letters_topic = _raw_topic(DEAD_LETTERS, _partitions)
# A broadcast to every query node: one partition keeps the versions in order.
index_updated_topic = _raw_topic(INDEX_UPDATED, 1)
