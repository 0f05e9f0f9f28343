"""The worker's ``/metrics`` after a small ingest: the counters move by what the ingest did.

Runs on the package's pipeline once every catalogue track is indexed: a local playlist of twelve
new generated clips and one malformed playlist reference are sent, and the worker's counters
are read from its web port before and after.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from cli.demo_audio import write_demo_catalogue
from streams.names import AUDIO_STORED, PLAYLISTS, TRACK_DISCOVERED
from tests.integration.pipeline.conftest import Pipeline
from tests.integration.pipeline.test_explorer_page import _ingested
from tests.pipelines import produce_playlists, until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(p: Pipeline) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(p.worker_web + "/metrics") as r:
        assert r.status == 200, await r.text()
        text = await r.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def _total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


async def test_worker_counters_move_by_what_an_ingest_did(pipeline: Pipeline) -> None:
    p = pipeline
    await _ingested(p)
    playlists = p.settings.kafka.topic(PLAYLISTS)
    discovered = p.settings.kafka.topic(TRACK_DISCOVERED)
    stored = p.settings.kafka.topic(AUDIO_STORED)
    folder = p.more_audio / "generated"
    files = len(write_demo_catalogue(folder))
    before = await _scrape(p)

    # New clips, and one malformed reference.
    await produce_playlists(p.env, [f"local:{folder}"])
    producer = AIOKafkaProducer(bootstrap_servers=p.settings.kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(playlists, b"\x00 not a playlist reference")
    finally:
        await producer.stop()

    def moved(after: Samples, name: str, **labels: str) -> float:
        return _total(after, name, **labels) - _total(before, name, **labels)

    async def counted() -> Samples | None:
        after = await _scrape(p)
        done = (
            moved(after, "spotrec_worker_events_total", topic=playlists) >= 2
            and moved(after, "spotrec_worker_events_total", topic=stored) >= files
            and moved(after, "spotrec_worker_index_builds_total", outcome="built") >= 1
        )
        return after if done else None

    after = await until(counted, 120, "the ingest counted", p.worker_log, interval_s=0.5)
    events = "spotrec_worker_events_total"
    assert moved(after, events, topic=playlists, agent="crawl_playlists") == 2
    assert moved(after, events, topic=discovered, agent="fetch_track_audio") == files
    assert moved(after, "spotrec_worker_dead_letters_total", agent="crawl_playlists") == 1
    assert moved(after, "spotrec_worker_dead_letters_total") == 1
    assert moved(after, events, topic=stored, agent="extract_features") == files
    assert moved(after, "spotrec_worker_event_seconds_count", agent="fetch_track_audio") == files
    # Every clip extracted once, in batches that add up to the clips.
    assert moved(after, "spotrec_worker_clips_extracted_total") == files
    assert moved(after, "spotrec_worker_extraction_seconds_per_clip_count") == files
    assert moved(after, "spotrec_worker_batch_size_sum", agent="extract_features") == files
    assert moved(after, "spotrec_worker_index_build_seconds_count", outcome="built") >= 1

    # Once the worker is idle, nothing is left to consume on any partition it reads.
    async def drained() -> Samples | None:
        samples = await _scrape(p)
        lags = {ls: v for (n, ls), v in samples.items() if n == "spotrec_worker_consumer_lag"}
        return samples if lags and not any(lags.values()) else None

    idle: dict[Any, float] = await until(drained, 60, "zero consumer lag", p.worker_log)
    partitions = {dict(ls)["topic"] for (n, ls) in idle if n == "spotrec_worker_consumer_lag"}
    assert discovered in partitions
