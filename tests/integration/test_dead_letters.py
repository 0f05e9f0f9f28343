"""Dead letters on the real Kafka: kept until redriven, listed, and sent back once, byte for byte.

Dead letters are written as the agents write them (``schemas.dead_letters.dead_letter_record``,
plus one old version-1 letter) on a topic prefix of the test's own; the ``spotrec dead-letters``
command runs as a real process against them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from config.settings import Settings
from schemas.dead_letters import dead_letter_record
from schemas.errors import DeadLetterV1
from streams.names import DEAD_LETTERS, DEAD_LETTERS_REDRIVEN, PLAYLISTS, TRACK_DISCOVERED
from streams.provision import ensure_topics
from streams.redrive import (
    REDRIVEN_FROM,
    Filters,
    list_dead_letters,
    read_committed,
    redrive,
    transactional_id,
)
from tests.pipelines import new_run_id, run_cli, run_scoped

#: Value bytes that are not UTF-8 (and a NUL): must come back exactly.
NOT_UTF8 = b"\xff\xfe\x00 not text \xc3\x28"


@pytest.fixture
async def deployment(
    servers: Settings, tmp_path: Path
) -> AsyncIterator[tuple[Settings, dict[str, str]]]:
    run = new_run_id("dlq")
    settings, env = run_scoped(servers, run, tmp_path)
    settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"topic_partitions": 2})}
    )
    env["SPOTREC_KAFKA_TOPIC_PARTITIONS"] = "2"
    await ensure_topics(settings)
    yield settings, env
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(run)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


async def _park(settings: Settings) -> None:
    """Six dead letters: three from track-discovered (one not UTF-8), one playlist, two v1 (one
    of them with replacement characters: its bytes are lost, so it is never sent back).
    """
    kafka = settings.kafka
    tracks, playlists = kafka.topic(TRACK_DISCOVERED), kafka.topic(PLAYLISTS)
    letters = [
        dead_letter_record(
            topic=tracks,
            partition=1,
            offset=7,
            reason="track-discovered: field 'track_id' holds 42",
            agent="fetch_track_audio",
            value=NOT_UTF8,
            key=b"\x80key",
            headers=[("trace", b"\x01\x02"), ("trace", b"again")],
            timestamp_ms=1_700_000_000_000,
            error="InvalidRecord",
            attempts=1,
            failed_at=1.0,
        ),
        *(
            dead_letter_record(
                topic=tracks,
                partition=0,
                offset=i,
                reason=f"unexpected TimeoutError: attempt {i}",
                agent="fetch_track_audio",
                value=f'{{"n": {i}}}'.encode(),
                key=f"k{i}".encode(),
                headers=[],
                timestamp_ms=None,
                error="TimeoutError",
                attempts=5,
                failed_at=2.0,
            )
            for i in range(2)
        ),
        dead_letter_record(
            topic=playlists,
            partition=0,
            offset=3,
            reason="not UTF-8",
            agent="crawl_playlists",
            value=b"\xfe playlist",
            key=None,
            headers=[],
            timestamp_ms=None,
            error=None,
            attempts=1,
            failed_at=3.0,
        ),
    ]
    old = DeadLetterV1(
        topic=playlists,
        partition=1,
        offset=9,
        reason="an old letter",
        payload="37i9dQZF1DXcBWIGoYBM5M",
        key="old",
        agent="crawl_playlists",
        failed_at=4.0,
    )
    lossy = DeadLetterV1(
        topic=playlists,
        partition=0,
        offset=11,
        reason="an old letter whose bytes were not text",
        payload="\ufffd\ufffd playlist",
        agent="crawl_playlists",
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for record in [*letters, old, lossy]:
            await producer.send_and_wait(kafka.topic(DEAD_LETTERS), record.dumps())
    finally:
        await producer.stop()


async def _committed(settings: Settings, topic: str) -> list[ConsumerRecord]:
    """Every committed record of ``topic``, as a read_committed consumer sees them."""
    return await read_committed(settings.kafka.bootstrap, topic)


async def test_the_dead_letter_topic_keeps_its_messages_until_redriven(
    deployment: tuple[Settings, dict[str, str]],
) -> None:
    settings, _ = deployment
    name = settings.kafka.topic(DEAD_LETTERS)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()

    async def retention_becomes(expected: str) -> None:
        """Poll the topic's retention until it is ``expected`` (config changes propagate)."""
        seen = None
        for _ in range(100):
            resource = ConfigResource(ConfigResourceType.TOPIC, name)
            (response,) = await admin.describe_configs([resource])
            seen = {e[0]: e[1] for r in response.resources for e in r[4]}.get("retention.ms")
            if seen == expected:
                return
            await asyncio.sleep(0.1)
        msg = f"{name}: retention.ms is {seen}, expected {expected}"
        raise AssertionError(msg)

    try:
        await retention_becomes("-1")
        # A topic left with the broker's default (7 days) is corrected by the next provisioning.
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, {})])
        await retention_becomes(str(7 * 24 * 3600 * 1000))
        week = settings.model_copy(
            update={"kafka": settings.kafka.model_copy(update={"dead_letter_retention_ms": 9})}
        )
        await ensure_topics(week)
        await retention_becomes("9")
        await ensure_topics(settings)
        await retention_becomes("-1")
    finally:
        await admin.close()


async def test_redrive_sends_each_dead_letter_back_once_byte_for_byte(
    deployment: tuple[Settings, dict[str, str]],
) -> None:
    settings, env = deployment
    kafka = settings.kafka
    tracks, playlists = kafka.topic(TRACK_DISCOVERED), kafka.topic(PLAYLISTS)
    await _park(settings)

    # The command itself once for each action; the library below (each start costs seconds).
    listing = await run_cli(env, "dead-letters", "list")
    assert "6 dead letters, 6 not redriven" in listing, listing
    assert listing.count("(original bytes not kept: not redriven)") == 1, listing
    assert "InvalidRecord" in listing and "x5" in listing
    assert len(await list_dead_letters(settings, Filters(reason="timeouterror"))) == 2

    dry = await redrive(settings, dry_run=True)
    assert (dry.matched, dry.sent, dry.already, dry.inexact) == (6, 5, 0, 1)
    assert await _committed(settings, tracks) == []
    assert await _committed(settings, playlists) == []

    out = await run_cli(env, "dead-letters", "redrive", "--topic", PLAYLISTS)
    assert "sent 2 of 3" in out, out
    assert "1 without their original bytes" in out, out
    assert "redrive: sent 2/2" in out  # progress
    assert await _committed(settings, tracks) == []
    sent = await _committed(settings, playlists)
    assert sorted((r.partition, r.key, r.value) for r in sent) == [
        (0, None, b"\xfe playlist"),
        (1, b"old", b"37i9dQZF1DXcBWIGoYBM5M"),
    ]

    # A redrive that died mid-batch: its transaction sent one letter and its record, and was
    # never committed. The next redrive fences it, so that send never becomes visible.
    crashed = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, transactional_id=transactional_id(settings)
    )
    await crashed.start()
    try:
        await crashed.begin_transaction()
        await crashed.send_and_wait(tracks, b"half done", key=b"k0", partition=0)
        await crashed.send_and_wait(kafka.topic(DEAD_LETTERS_REDRIVEN), b"{}", key=b"0@1")
        seen: list[int] = []
        timeouts = await redrive(
            settings,
            Filters(reason="TimeoutError"),
            batch_size=1,
            progress=lambda r: seen.append(r.sent),
        )
        assert (timeouts.matched, timeouts.sent) == (2, 2)
        assert seen == [0, 1, 2]
    finally:
        with contextlib.suppress(Exception):
            await crashed.stop()
    rest = await redrive(settings)
    assert (rest.matched, rest.sent, rest.already, rest.inexact) == (6, 1, 4, 1)
    again = await redrive(settings)
    assert (again.matched, again.sent, again.already) == (6, 0, 5)
    waiting = [p.ref for p in await list_dead_letters(settings) if not p.redriven]
    assert len(waiting) == 1  # the lossy one

    assert len(await _committed(settings, playlists)) == 2
    back = await _committed(settings, tracks)
    assert sorted((r.partition, r.key, r.value) for r in back) == [
        (0, b"k0", b'{"n": 0}'),
        (0, b"k1", b'{"n": 1}'),
        (1, b"\x80key", NOT_UTF8),
    ]
    exact = next(r for r in back if r.key == b"\x80key")
    assert exact.value == NOT_UTF8
    assert [(k, v) for k, v in exact.headers if k != REDRIVEN_FROM] == [
        ("trace", b"\x01\x02"),
        ("trace", b"again"),
    ]
    assert all(dict(r.headers)[REDRIVEN_FROM] for r in back)
