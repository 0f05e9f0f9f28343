"""Consumes ``audio-stored.v1``; stores vectors in Cassandra and emits ``features-extracted.v1``.

Reads the audio of a batch of tracks from the object store, runs the extractor on the batch
(in a thread: TensorFlow blocks), upserts each vector with its model version, top tags and the
audio's provenance, emits the vector, and deletes the audio object (unless a retention period is
set, in which case the retention sweeper deletes it later). Audio that cannot be decoded marks
the track ``unavailable`` with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from faust.types import StreamT

from schemas.audio import AudioStoredV1
from schemas.decoding import decode
from schemas.errors import InvalidRecord
from schemas.features import FeaturesExtractedV1
from stores.objects import ObjectNotFound
from streams import metrics
from streams.app import app, model_version, settings
from streams.dead_letters import dead_letter, unexpected
from streams.services import resources
from streams.topics import audio_stored_topic, features_extracted_topic

logger = logging.getLogger(__name__)


def features_key(track_id: str, model_version: str) -> bytes:
    """The key of a features-extracted record: compaction keeps one vector per track and model."""
    return f"{track_id} {model_version}".encode()


#: Seconds to wait for a batch to fill before running a smaller one.
BATCH_WINDOW_S = 2.0
#: Tags stored and returned per track.
TOP_TAGS = 5


@app.agent(audio_stored_topic)
async def extract_features(stream: StreamT[Any]) -> None:
    """Embed stored audio in batches."""
    await resources.ready()
    batches = stream.take_events(  # type: ignore[attr-defined]  # missing from faust's StreamT
        settings.model.batch_size, within=BATCH_WINDOW_S
    )
    async for events in batches:
        metrics.batch("extract_features", len(events))
        batch: list[AudioStoredV1] = []
        decoded = []
        for event in events:
            try:
                batch.append(decode(AudioStoredV1, event.value))
            except InvalidRecord as exc:
                await dead_letter(event, str(exc), "extract_features")
            else:
                decoded.append(event)
        if not batch:
            continue
        try:
            await embed_batch(batch)
        except Exception as exc:
            # A crashed agent acks its events: park the batch instead, so none is lost.
            logger.exception("extract_features failed on a batch of %d", len(batch))
            for event in decoded:
                await dead_letter(event, unexpected(exc), "extract_features")


async def _audio_to_embed(item: AudioStoredV1) -> bytes | None:
    """The stored audio of a track still to embed; ``None`` if it has its vector or no audio."""
    if await resources.tracks.has_embedding(item.track_id, model_version):
        return None  # a replayed event: the vector is stored already
    try:
        return await resources.objects.get(item.object_key)
    except ObjectNotFound:
        await resources.tracks.set_status(
            item.track_id, "failed", error=f"audio object {item.object_key} is missing"
        )
        return None


async def embed_batch(batch: list[AudioStoredV1]) -> int:
    """Extract, store and announce the vectors of a batch; returns how many were stored."""
    extractor = await resources.extractor()
    tracks, objects = resources.tracks, resources.objects
    # The reads of a batch overlap: each is a network round trip.
    fetched = await asyncio.gather(*(_audio_to_embed(item) for item in batch))
    present = [(item, data) for item, data in zip(batch, fetched, strict=True) if data is not None]
    if not present:
        return 0
    outcomes = await metrics.timed_extraction(
        len(present), asyncio.to_thread(lambda: list(extractor.extract(d for _, d in present)))
    )
    now = datetime.now(UTC).timestamp()
    embedded: list[FeaturesExtractedV1] = []
    for (item, _), outcome in zip(present, outcomes, strict=True):
        if isinstance(outcome, Exception):
            await tracks.set_status(item.track_id, "unavailable", error=str(outcome))
            logger.info("track %s: audio not usable: %s", item.track_id, outcome)
            continue
        embedded.append(
            FeaturesExtractedV1(
                track_id=item.track_id,
                model_version=outcome.version,
                embedding=[float(v) for v in outcome.vector],
                audio_source=item.audio_source,
                audio_sha256=item.sha256,
                tags=[[name, p] for name, p in outcome.top_tags(TOP_TAGS)],
                extracted_at=now,
            )
        )
    await tracks.store_features(embedded)
    for record in embedded:
        await features_extracted_topic.send(
            key=features_key(record.track_id, record.model_version), value=record.dumps()
        )
    if settings.audio.retention_s == 0:
        for item, _ in present:
            await objects.delete(item.object_key)
    stored = len(embedded)
    logger.info("embedded %d of %d tracks", stored, len(batch))
    return stored
