"""Lists the dead letters and sends them back to their topics, each at most once.

Reads ``dead-letters.v1`` (every version of dead letter) and ``dead-letters-redriven.v1``, the
compacted record of the dead letters already sent back, keyed by the dead letter's own place
(``partition@offset`` on the dead-letter topic). Writes the original key, value and headers
(plus a ``spotrec-redriven-from`` header) to the original topic and partition.

Each batch of sends and their records in ``dead-letters-redriven.v1`` go in one Kafka
transaction: either both are committed or neither is. A redrive that crashes mid-batch leaves
that batch uncommitted (aborted when the next redrive starts, as it uses the same transactional
id and so fences the old one); the next run reads the record with ``read_committed`` and sends
exactly the letters not yet committed. Two redrives at once cannot both send: the second to start
fences the first before it reads what was already sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from config.settings import Settings
from schemas.dead_letters import DeadLetter, read_dead_letter
from schemas.errors import InvalidRecord
from streams.kafka_clients import started
from streams.names import DEAD_LETTERS, DEAD_LETTERS_REDRIVEN
from streams.provision import create_missing

#: Header naming the dead letter a redriven message came from.
REDRIVEN_FROM = "spotrec-redriven-from"


@dataclass(frozen=True)
class Parked:
    """One message on the dead-letter topic.

    Attributes:
        ref: Its place on the dead-letter topic, ``partition@offset``: its identity.
        letter: The dead letter, or None when it cannot be read.
        problem: Why it cannot be read ("" when it can).
        redriven: Whether it was already sent back.
    """

    ref: str
    letter: DeadLetter | None
    problem: str = ""
    redriven: bool = False


@dataclass(frozen=True)
class Filters:
    """Which dead letters a command is about.

    Attributes:
        topic: Only those read from this topic (full name, or without the deployment's prefix).
        reason: Only those whose reason contains this text (case-insensitive).
    """

    topic: str | None = None
    reason: str | None = None

    def match(self, letter: DeadLetter, prefix: str) -> bool:
        """Whether ``letter`` passes every filter given."""
        if self.topic is not None and letter.topic not in (self.topic, prefix + self.topic):
            return False
        return self.reason is None or self.reason.lower() in letter.reason.lower()


@dataclass
class RedriveReport:
    """What a redrive did.

    Attributes:
        matched: Dead letters passing the filters.
        sent: Sent back by this run (or, in a dry run, that would be).
        already: Skipped: sent back by an earlier run.
        inexact: Skipped: the original bytes were not kept (a value too large to keep, or an
            old text dead letter with replacement characters); ``list`` shows them.
        unreadable: Messages on the dead-letter topic that are not dead letters.
    """

    matched: int = 0
    sent: int = 0
    already: int = 0
    inexact: int = 0
    unreadable: int = 0


async def read_committed(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every committed record of ``topic`` up to its current end (none if it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await started(admin)
    try:
        if topic not in await admin.list_topics():
            return []
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await started(consumer)
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        # Explicit positions: seek_to_beginning() can lose a race with the reset that follows
        # assign(), and then nothing is read.
        for tp, start in (await consumer.beginning_offsets(partitions)).items():
            consumer.seek(tp, start)
        records: list[ConsumerRecord] = []
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            records += [r for tp, rs in batch.items() for r in rs if r.offset < ends[tp]]
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return records


async def redriven_refs(settings: Settings) -> set[str]:
    """The dead letters (``partition@offset``) already sent back, as committed."""
    topic = settings.kafka.topic(DEAD_LETTERS_REDRIVEN)
    return {r.key.decode() for r in await read_committed(settings.kafka.bootstrap, topic) if r.key}


async def list_dead_letters(settings: Settings, filters: Filters = Filters()) -> list[Parked]:
    """The dead letters passing ``filters``, oldest first per partition, and the unreadable."""
    done = await redriven_refs(settings)
    records = await read_committed(settings.kafka.bootstrap, settings.kafka.topic(DEAD_LETTERS))
    parked = []
    for record in sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset)):
        ref = f"{record.partition}@{record.offset}"
        try:
            letter = read_dead_letter(record.value or b"")
        except InvalidRecord as exc:
            parked.append(Parked(ref, None, str(exc)))
            continue
        if filters.match(letter, settings.kafka.topic_prefix):
            parked.append(Parked(ref, letter, redriven=ref in done))
    return parked


def transactional_id(settings: Settings) -> str:
    """The Kafka transactional id of the deployment's redrives (one at a time)."""
    return f"{settings.worker.app_id}.{settings.kafka.topic(DEAD_LETTERS)}.redrive"


def _marker(ref: str, letter: DeadLetter) -> bytes:
    return json.dumps(
        {
            "dead_letter": ref,
            "topic": letter.topic,
            "partition": letter.partition,
            "offset": letter.offset,
            "redriven_at": time.time(),
        }
    ).encode()


async def redrive(
    settings: Settings,
    filters: Filters = Filters(),
    *,
    dry_run: bool = False,
    batch_size: int = 100,
    progress: Callable[[RedriveReport], None] = lambda report: None,
) -> RedriveReport:
    """Send the matching dead letters not yet sent back to their topics, once each.

    Args:
        settings: Where Kafka is, and the deployment's topic prefix and app id.
        filters: Which dead letters.
        dry_run: Count what would be sent; send and record nothing.
        batch_size: Letters per transaction (a crash resends at most the uncommitted batch's
            worth to consumers that read uncommitted records; none to the redrive record).
        progress: Called after each committed batch (and once at the start).

    Returns:
        What was done.
    """
    kafka = settings.kafka
    record_topic = kafka.topic(DEAD_LETTERS_REDRIVEN)
    producer = None
    if not dry_run:
        await create_missing(
            kafka.bootstrap, {record_topic: 1}, {record_topic: {"cleanup.policy": "compact"}}
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap,
            # One id per deployment: starting fences any earlier redrive and aborts its open
            # transaction, so what is read next is final.
            transactional_id=transactional_id(settings),
            acks="all",
        )
        await started(producer)
    try:
        report = RedriveReport()
        todo: list[Parked] = []
        for parked in await list_dead_letters(settings, filters):
            if parked.letter is None:
                report.unreadable += 1
                continue
            report.matched += 1
            if parked.redriven:
                report.already += 1
            elif not parked.letter.exact:
                report.inexact += 1
            else:
                todo.append(parked)
        progress(report)
        if producer is None:
            report.sent = len(todo)
            return report
        for start in range(0, len(todo), batch_size):
            await _send_batch(producer, record_topic, todo[start : start + batch_size])
            report.sent += len(todo[start : start + batch_size])
            progress(report)
        return report
    finally:
        if producer is not None:
            await producer.stop()


async def _send_batch(
    producer: AIOKafkaProducer, record_topic: str, batch: Sequence[Parked]
) -> None:
    async with producer.transaction():
        for parked in batch:
            letter = parked.letter
            assert letter is not None  # filtered out before
            partitions = await producer.partitions_for(letter.topic)
            # The original partition keeps the key's order with its other messages.
            partition = letter.partition if letter.partition in partitions else None
            headers = [*letter.headers, (REDRIVEN_FROM, parked.ref.encode())]
            await producer.send(
                letter.topic, letter.value, key=letter.key, partition=partition, headers=headers
            )
            await producer.send(record_topic, _marker(parked.ref, letter), key=parked.ref.encode())
