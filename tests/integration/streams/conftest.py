"""Fixtures for the agents' work functions run directly: real stores, topics and fakes.

Reads the session's settings; creates a keyspace, bucket and topics of the test's own (removed
after), and builds a :class:`~streams.resources.Resources` producing through a plain Kafka
producer, so each work function is called as a plain function, with no worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from config.settings import Settings
from features.extractor import Extractor, load_extractor
from features.versions import model_version_of
from stores.migrations import migrate
from stores.objects import ensure_bucket
from streams.kafka_clients import started
from streams.provision import ensure_topics, topic_partitions
from streams.resources import KafkaEmitter, Resources
from tests.fakes.cdn import FakeCdn
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.fixtures import (  # noqa: F401  # pytest finds fixtures by name in a conftest
    catalogue,
    fake_cdn,
    fake_deezer,
    settings_for_fakes,
)
from tests.pipelines import new_run_id, remove_deployment, run_scoped


@pytest.fixture(scope="module")
def extractor(settings: Settings) -> Extractor:
    """The configured extractor, loaded once per module (TensorFlow takes seconds to start)."""
    return load_extractor(settings.model)


@pytest.fixture(scope="package")
async def deployment(
    servers: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Settings]:
    """A keyspace, bucket and topics of this package's own, removed after its last test.

    Tests share it and keep apart by their own track ids and playlist references.
    """
    run = new_run_id("w")
    settings, _ = run_scoped(servers, run, tmp_path_factory.mktemp(run))
    settings = settings.model_copy(
        update={
            "retry": settings.retry.model_copy(
                update={"backoff_s": 0.01, "max_backoff_s": 0.05, "delay_s": 30.0, "limit": 3}
            ),
            "audio": settings.audio.model_copy(update={"retries": 1}),
            "deezer": settings.deezer.model_copy(update={"retries": 1}),
        }
    )
    await migrate(settings.cassandra)
    await ensure_bucket(settings.s3)
    await ensure_topics(settings)
    try:
        yield settings
    finally:
        await remove_deployment(settings, run)


async def scoped_resources(
    settings: Settings, extractor: Extractor | None = None
) -> AsyncIterator[Resources]:
    """Started resources over ``settings``, producing through a plain Kafka producer."""
    emitter = KafkaEmitter(settings)
    await emitter.start()
    res = Resources(settings, model_version_of(settings.model), emitter, extractor=extractor)
    try:
        async with res:
            yield res
    finally:
        await emitter.stop()


@pytest.fixture
async def res(
    deployment: Settings,
    fake_deezer: FakeDeezer,  # noqa: F811  # the fixture imported above, requested by name
    fake_cdn: FakeCdn,  # noqa: F811  # likewise
) -> AsyncIterator[Resources]:
    """Resources pointed at the fakes, without an extractor (loaded only if a test embeds)."""
    async for resources in scoped_resources(settings_for_fakes(deployment, deezer=fake_deezer)):
        yield resources


Record = tuple[bytes | None, bytes, dict[str, bytes]]


async def records(
    settings: Settings, topic: str, key: bytes | None = None, *, expect: int | None = None
) -> list[Record]:
    """The records of a pipeline topic so far (only those under ``key`` if given), in order
    within each partition: key, value and headers.

    With ``expect``, reads again (for up to 15 s) until at least that many are there: a fresh
    consumer's view of a topic created moments ago can lag behind an acknowledged send.
    """
    deadline = time.monotonic() + 15.0
    while True:
        found = await _read(settings, topic, key)
        if expect is None or len(found) >= expect or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def _read(settings: Settings, topic: str, key: bytes | None) -> list[Record]:
    name = settings.kafka.topic(topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False
    )
    await started(consumer)
    try:
        # Fresh metadata first: without it the end offsets of a new topic can read as 0.
        await consumer.topics()
        partitions = [TopicPartition(name, p) for p in range(topic_partitions(settings)[name])]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[Record] = []
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for message in batch.get(tp, []):
                    headers = {k: bytes(v) for k, v in message.headers}
                    found.append((message.key, message.value or b"", headers))
        return [r for r in found if key is None or r[0] == key]
    finally:
        await consumer.stop()
