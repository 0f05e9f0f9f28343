"""The features agent's work: embed stored audio in batches, store and announce the vectors.

Reads ``audio-stored.v1`` records and each track's audio from the object store; runs the
extractor on the batch (in a thread: TensorFlow blocks); writes each vector with its model
version, top tags and the audio's provenance to Cassandra; emits ``features-extracted.v1``;
marks the track ``extracted``; deletes the audio object (unless a retention period is set, in
which case the retention sweeper deletes it later). Audio that cannot give a vector marks the
track ``unavailable`` with the reason.

The per-track steps (vector upsert, emit, status, audio delete) are each idempotent and run in
that order. A replayed record completes whichever are missing: a track whose vector is stored
is announced from the stored vector and settled, without running the network again; one whose
audio object is gone before its vector was stored is fetched again through the retry schedule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from schemas.audio import AudioStoredV1
from schemas.decoding import decode
from schemas.errors import InvalidRecord
from schemas.features import FeaturesExtractedV1
from stores.objects import ObjectNotFound
from streams import metrics
from streams.handling import Parked, guarded
from streams.names import FEATURES_EXTRACTED
from streams.resources import Resources
from streams.schedule import schedule_retry

logger = logging.getLogger(__name__)

#: Tags stored and returned per track.
TOP_TAGS = 5
#: Per-track steps, in order, as the crash hook names them.
STEPS = ("features.upsert", "features.emit", "features.status", "features.delete")


def features_key(track_id: str, model_version: str) -> bytes:
    """The key of a features-extracted record: compaction keeps one vector per track and model."""
    return f"{track_id} {model_version}".encode()


def decode_batch(values: Sequence[bytes]) -> list[AudioStoredV1 | Parked]:
    """Each ``audio-stored.v1`` value decoded, or parked with the reason it cannot be."""
    decoded: list[AudioStoredV1 | Parked] = []
    for value in values:
        try:
            decoded.append(decode(AudioStoredV1, value))
        except InvalidRecord as exc:
            decoded.append(Parked(str(exc), exc))
    return decoded


@dataclass(frozen=True)
class _Plan:
    """What one item of a batch still needs."""

    item: AudioStoredV1
    #: The vector already stored (a replay), if any.
    stored: FeaturesExtractedV1 | None = None
    #: Whether the track is already marked extracted (then it was announced too).
    settled: bool = False
    #: The audio to embed, when no vector is stored.
    audio: bytes | None = None


async def _plan(res: Resources, item: AudioStoredV1) -> _Plan:
    stored = await res.tracks.features(item.track_id, res.model_version)
    if stored is not None:
        settled = await res.tracks.status(item.track_id) == "extracted"
        return _Plan(item, stored=stored, settled=settled)
    try:
        return _Plan(item, audio=await res.objects.get(item.object_key))
    except ObjectNotFound:
        return _Plan(item)


async def embed_batch(res: Resources, batch: Sequence[AudioStoredV1]) -> int:
    """Extract, store and announce the vectors of a batch; returns how many were stored new."""
    # The reads of a batch overlap: each is a network round trip.
    plans: list[_Plan] = await res.own(
        "read stored vectors and audio", lambda: asyncio.gather(*(_plan(res, i) for i in batch))
    )
    # One extraction per track: a track discovered through two playlists at once can arrive
    # twice in a batch, and two vectors of it (equal but for float rounding, as batch positions
    # differ) would be stored concurrently and announced in turn, so Cassandra and the topic
    # could keep different ones. The last record's audio is the one embedded.
    to_embed = list({p.item.track_id: p for p in plans if p.audio is not None}.values())
    new: list[FeaturesExtractedV1] = []
    unusable: list[tuple[AudioStoredV1, str]] = []
    if to_embed:
        extractor = await res.extractor()
        clips = [p.audio for p in to_embed if p.audio is not None]
        outcomes = await metrics.timed_extraction(
            len(clips), asyncio.to_thread(lambda: list(extractor.extract(clips)))
        )
        now = datetime.now(UTC).timestamp()
        for plan, outcome in zip(to_embed, outcomes, strict=True):
            item = plan.item
            if isinstance(outcome, Exception):
                unusable.append((item, str(outcome)))
                logger.info("track %s: audio not usable: %s", item.track_id, outcome)
                continue
            new.append(
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
    if new:
        await res.own("store vectors", partial(res.tracks.store_vectors, new))
        res.step_done("features.upsert")
    # Announce and settle every track whose vector is stored and that is not settled yet: the
    # new ones, and those a crash interrupted after their upsert.
    replayed = {p.item.track_id: p.stored for p in plans if p.stored is not None and not p.settled}
    unsettled = new + list(replayed.values())
    for record in unsettled:
        key = features_key(record.track_id, record.model_version)
        await res.emit(FEATURES_EXTRACTED, key, record.dumps())
    if unsettled:
        res.step_done("features.emit")
        await res.own("mark tracks extracted", partial(res.tracks.mark_extracted, unsettled))
        res.step_done("features.status")
    for item, reason in unusable:
        unavailable = partial(res.tracks.set_status, item.track_id, "unavailable", error=reason)
        await res.own("record a track's status", unavailable)
    if res.settings.audio.retention_s == 0:
        done = [p.item for p in plans if p.audio is not None or p.stored is not None]
        for item in done:
            await res.own("delete audio", partial(res.objects.delete, item.object_key))
        if done:
            res.step_done("features.delete")
    for plan in plans:
        if plan.audio is None and plan.stored is None:
            await _refetch(res, plan.item)
    logger.info(
        "embedded %d of %d tracks (%d completed after an interruption)",
        len(new),
        len(batch),
        len(unsettled) - len(new),
    )
    return len(new)


async def embed_or_park(
    res: Resources, agent: str, batch: Sequence[AudioStoredV1]
) -> list[Parked | None]:
    """Embed ``batch`` as :func:`embed_batch` does; each item's outcome, in order.

    Outages are waited out inside. When the batch breaks on an error nothing expected, each item
    is run again alone, so only the items that break by themselves are parked, each with its own
    error; the others are done (the steps are idempotent, so what the batch finished is kept).
    """

    async def run(items: Sequence[AudioStoredV1]) -> Parked | None:
        await embed_batch(res, items)
        return None

    if not batch:
        return []
    parked = await guarded(res, agent, partial(run, batch))
    if parked is None or len(batch) < 2:
        return [parked] * len(batch)
    logger.warning("%s: a batch of %d broke; running its items one by one", agent, len(batch))
    return [await guarded(res, agent, partial(run, [item])) for item in batch]


async def _refetch(res: Resources, item: AudioStoredV1) -> None:
    """The audio object is gone and no vector is stored: fetch the track again, later."""
    reason = f"audio object {item.object_key} is missing"
    track = await res.own("read a track", partial(res.tracks.discovered, item.track_id))
    if track is None:
        # Nothing says where the audio could be had again: a retry could never succeed.
        final = f"{reason}, and the track is not known: nothing to fetch it again from"
        failed = partial(res.tracks.set_status, item.track_id, "unavailable", error=final)
        await res.own("record a track's status", failed)
        return
    # A fresh schedule (try 0): the record re-sent is rebuilt from the track's stored row.
    await schedule_retry(
        res, "track", item.track_id, item.track_id.encode(), track.dumps(), 0, reason
    )
