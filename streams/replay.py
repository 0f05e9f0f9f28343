"""Replays a retained topic from its beginning, resumably, with progress on the terminal.

Reads every partition of one topic up to the end offsets it had when the replay began; hands each
batch of records to a callback; commits the positions under a consumer group of its own after
every batch, so an interrupted replay resumes where it stopped and a finished one has nothing
left to do (``restart`` starts over).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from config.settings import KafkaSettings
from streams.kafka_clients import started

Handler = Callable[[Sequence[Any]], Awaitable[None]]


@dataclass(frozen=True)
class ReplayOptions:
    """Where a replay starts and how fast it goes.

    Attributes:
        restart: Start from the beginning even if an earlier run committed positions.
        batch_size: Most records per batch (and per commit).
        max_rate: Most records per second, so a replay on a live deployment leaves Cassandra
            and the workers room for the live traffic (``None``: as fast as it goes).
    """

    restart: bool = False
    batch_size: int = 500
    max_rate: float | None = None


@dataclass
class Progress:
    """How far a replay got, in offsets (compacted topics have gaps, so not in records)."""

    topic: str
    total: int
    done: int = 0
    records: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        """``done / total``, rate and time left, for the terminal."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        share = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"{self.topic}: {self.done}/{self.total} ({share:.0f}%), "
            f"{rate:.0f}/s, {left:.0f} s left"
        )


def print_progress(progress: Progress) -> None:
    """Print a progress line: rewritten in place on a terminal, one line per call in a log."""
    end = "\r" if sys.stdout.isatty() else "\n"
    print(progress.line(), end=end, flush=True)


async def replay(
    settings: KafkaSettings,
    topic: str,
    group: str,
    handle: Handler,
    options: ReplayOptions = ReplayOptions(),
    report: Callable[[Progress], None] = print_progress,
) -> Progress:
    """Feed every record of ``topic`` (up to its current end) to ``handle`` in batches.

    Args:
        settings: Where Kafka is.
        topic: The full topic name.
        group: Consumer group under which positions are committed (one per replay kind).
        handle: Awaited with each batch; a failure stops the replay before that batch is
            committed, so the next run handles it again.
        options: Where to start, batch size and rate limit.
        report: Called after every batch with the progress so far (default: print it).

    Returns:
        The final progress.
    """
    partitions = await _partitions(settings, topic)
    if not partitions:
        return Progress(topic, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await started(consumer)
    try:
        # Manual assignment: the group is only where positions are kept, not a subscription.
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            committed = None if options.restart else await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        starts = {tp: await consumer.position(tp) for tp in partitions}
        progress = Progress(topic, sum(max(0, ends[tp] - starts[tp]) for tp in partitions))
        report(progress)
        pending = {tp for tp in partitions if starts[tp] < ends[tp]}
        while pending:
            batch = await consumer.getmany(
                *pending, timeout_ms=1000, max_records=options.batch_size
            )
            records = [r for tp, rs in batch.items() for r in rs if r.offset < ends[tp]]
            if records:
                await handle(records)
            positions = {tp: min(await consumer.position(tp), ends[tp]) for tp in partitions}
            await consumer.commit({tp: OffsetAndMetadata(p, "") for tp, p in positions.items()})
            pending = {tp for tp, p in positions.items() if p < ends[tp]}
            progress.records += len(records)
            progress.done = sum(positions[tp] - starts[tp] for tp in partitions)
            report(progress)
            if options.max_rate and pending:
                # Sleep until the records so far are no faster than the rate allows.
                ahead = progress.records / options.max_rate - (time.monotonic() - progress.started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        return progress
    finally:
        await consumer.stop()


async def _partitions(settings: KafkaSettings, topic: str) -> list[TopicPartition]:
    """The topic's partitions (none if it does not exist), from the cluster's metadata."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await started(admin)
    try:
        if topic not in await admin.list_topics():
            return []
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
