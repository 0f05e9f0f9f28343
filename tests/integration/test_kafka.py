"""Kafka against the real broker: aiokafka round trips and a Faust agent in a real worker."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from config.settings import PROJECT_ROOT, Settings
from tests.processes import terminate


@pytest.fixture
async def admin(servers: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=servers.kafka.bootstrap)
    await client.start()
    yield client
    await client.close()


async def _consume(
    bootstrap: str, topic: str, count: int, group: str | None = None, deadline_s: float = 60.0
) -> list[tuple[bytes | None, bytes | None, int]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest"
    )
    await consumer.start()
    received: list[tuple[bytes | None, bytes | None, int]] = []
    try:
        async with asyncio.timeout(deadline_s):
            async for msg in consumer:
                received.append((msg.key, msg.value, msg.partition))
                if len(received) == count:
                    break
    finally:
        await consumer.stop()
    return received


async def test_produce_and_consume_with_aiokafka(
    servers: Settings, admin: AIOKafkaAdminClient, unique: str
) -> None:
    partitions = servers.kafka.topic_partitions
    await admin.create_topics([NewTopic(unique, num_partitions=partitions, replication_factor=1)])
    described = await admin.describe_topics([unique])
    assert len(described[0]["partitions"]) == partitions

    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka.bootstrap, acks="all")
    await producer.start()
    # Two versions of each key: both must land on one partition, in the order sent.
    sent = [(f"track-{i % 20}".encode(), f"value-{i}".encode()) for i in range(40)]
    try:
        for key, value in sent:
            await producer.send_and_wait(unique, value=value, key=key)
    finally:
        await producer.stop()

    received = await _consume(servers.kafka.bootstrap, unique, len(sent), group=f"{unique}-g")
    assert sorted((k, v) for k, v, _ in received) == sorted(sent)
    partitions_of: dict[bytes | None, set[int]] = {}
    values_of: dict[bytes | None, list[bytes | None]] = {}
    for k, v, partition in received:
        partitions_of.setdefault(k, set()).add(partition)
        values_of.setdefault(k, []).append(v)
    assert all(len(p) == 1 for p in partitions_of.values())
    assert all(values_of[k] == [v for kk, v in sent if kk == k] for k in values_of)
    assert len({p for _, _, p in received}) > 1


async def test_faust_agent_in_a_real_worker(
    servers: Settings, admin: AIOKafkaAdminClient, unique: str, tmp_path: Path
) -> None:
    partitions = servers.kafka.topic_partitions
    # Source topics are created up front with the app's partition count, as Faust requires.
    await admin.create_topics(
        [
            NewTopic(f"{unique}-in", num_partitions=partitions, replication_factor=1),
            NewTopic(f"{unique}-out", num_partitions=partitions, replication_factor=1),
        ]
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.echo_worker",
            f"--datadir={tmp_path}",
            "worker",
            "--without-web",
            "--loglevel=warn",
            cwd=PROJECT_ROOT,
            env={**os.environ, "SPOTREC_WORKER_APP_ID": unique},
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        producer = AIOKafkaProducer(bootstrap_servers=servers.kafka.bootstrap)
        await producer.start()
        try:
            sent = {f"k{i}".encode(): f"hello {i}".encode() for i in range(20)}
            for key, value in sent.items():
                await producer.send_and_wait(f"{unique}-in", value=value, key=key)
        finally:
            await producer.stop()
        consume = asyncio.create_task(
            _consume(servers.kafka.bootstrap, f"{unique}-out", len(sent), deadline_s=90)
        )
        exited = asyncio.create_task(worker.wait())
        await asyncio.wait([consume, exited], return_when=asyncio.FIRST_COMPLETED)
        if not consume.done() or consume.exception() is not None:
            consume.cancel()
            pytest.fail("no echo from the worker; its output:\n" + log.read_text()[-4000:])
        out_records = consume.result()
        assert {k: v for k, v, _ in out_records} == {k: v.upper() for k, v in sent.items()}
        assert worker.returncode is None, "the worker exited while it should be consuming"
    finally:
        await terminate(worker)
    assert worker.returncode == 0, log.read_text()[-3000:]
