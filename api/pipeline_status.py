"""The pipeline's counts for the status strip: tracks by status and dead letters.

Reads Cassandra (tracks by status, through the status index) and the dead-letter topic's offsets
in Kafka; writes nothing. Counting is not free at a million tracks, so one count is shared by
every request for :data:`MAX_AGE_S` seconds, and a dependency that does not answer within
:data:`TIMEOUT_S` gives ``None`` for its part rather than a slow or failed page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from config.settings import Settings
from stores.track_state import TrackStateReader
from streams.kafka_clients import started
from streams.names import DEAD_LETTERS

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a count is reused.
MAX_AGE_S = 10.0
#: Seconds each count may take.
TIMEOUT_S = 3.0


@dataclass(frozen=True)
class PipelineCounts:
    """Counts as of ``at`` (monotonic seconds); ``None`` where a dependency did not answer."""

    tracks: dict[str, int] | None
    dead_letters: int | None
    at: float


async def dead_letter_count(settings: Settings) -> int:
    """Dead letters held by the topic: the sum over partitions of end minus start offsets."""
    topic = settings.kafka.topic(DEAD_LETTERS)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=None)
    await started(consumer)
    try:
        partitions = await consumer.topics()
        if topic not in partitions:
            return 0
        ids = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(ids)]
        start = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        return sum(end[tp] - start[tp] for tp in tps)
    finally:
        await consumer.stop()


class PipelineStatus:
    """Cached pipeline counts; ``reader`` gives the Cassandra reader, or ``None`` without one."""

    def __init__(
        self, settings: Settings, reader: Callable[[], Awaitable[TrackStateReader | None]]
    ) -> None:
        self.settings = settings
        self.reader = reader
        self._cached: PipelineCounts | None = None
        self._lock = asyncio.Lock()

    async def counts(self) -> PipelineCounts:
        """The counts, at most :data:`MAX_AGE_S` old."""
        async with self._lock:  # one count at a time: concurrent requests share it
            cached = self._cached
            if cached is None or time.monotonic() - cached.at > MAX_AGE_S:
                reader = await self.reader()
                tracks, dead = await asyncio.gather(
                    _bounded(reader.counts() if reader else None, "track counts"),
                    _bounded(dead_letter_count(self.settings), "dead-letter count"),
                )
                cached = self._cached = PipelineCounts(tracks, dead, time.monotonic())
            return cached


async def _bounded(work: Awaitable[T] | None, what: str) -> T | None:
    if work is None:
        return None
    try:
        return await asyncio.wait_for(work, TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency shows as unknown
        logger.warning("%s unavailable: %s", what, exc)
        return None
