"""Consumes ``track-discovered.v1``; stores each track's audio in S3 and emits ``audio-stored.v1``.

Reads a track event, records the track's metadata in Cassandra, resolves and downloads its audio
(only from allowed hosts and folders), puts it in the object store under ``audio/<track id>``,
and emits where it is. A track without audio is recorded as ``unavailable`` with the reason (and
listed by the API); a transient failure as ``failed``, retried when the playlist is ingested
again. Tracks already settled (a vector of the current model version, or no usable audio) are
skipped, so a replay does no work twice, while ``reindex --from tracks`` after a model change
sends every track through again.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

from faust.types import StreamT

from schemas.audio import AudioStoredV1
from schemas.decoding import decode
from schemas.errors import InvalidRecord
from schemas.tracks import TrackDiscoveredV1, check_track
from sources.errors import AudioError, SourceError
from stores.tracks import AudioStatus
from streams.app import app, model_version
from streams.dead_letters import dead_letter, unexpected
from streams.services import resources
from streams.topics import audio_stored_topic, track_discovered_topic

logger = logging.getLogger(__name__)


def audio_key(track_id: str) -> str:
    """The object-store key of a track's audio."""
    return "audio/" + quote(track_id, safe="")


@app.agent(track_discovered_topic, concurrency=4)  # I/O-bound: several downloads in flight
async def fetch_track_audio(stream: StreamT[Any]) -> None:
    """Fetch and store the audio of each discovered track."""
    await resources.ready()
    async for event in stream.events():
        try:
            track = decode(TrackDiscoveredV1, event.value)
            check_track(track)
        except InvalidRecord as exc:
            await dead_letter(event, str(exc), "fetch_track_audio")
            continue
        try:
            await store_track_audio(track)
        except Exception as exc:
            # A crashed agent acks the event it was on: park it instead, so it is never lost.
            logger.exception("fetch_track_audio failed on %s", track.track_id)
            await dead_letter(event, unexpected(exc), "fetch_track_audio")


async def store_track_audio(track: TrackDiscoveredV1) -> AudioStoredV1 | None:
    """Record the track, fetch and store its audio, and announce it; ``None`` if it has none."""
    tracks = resources.tracks
    if await tracks.settled(track.track_id, model_version):
        return None
    await tracks.upsert_discovered(track)
    try:
        audio = await resources.fetcher.fetch(track)
    except AudioError as exc:
        await tracks.set_status(track.track_id, "unavailable", error=str(exc))
        logger.info("track %s has no audio: %s", track.track_id, exc)
        return None
    except SourceError as exc:
        status: AudioStatus = "failed" if exc.retriable else "unavailable"
        await tracks.set_status(track.track_id, status, error=str(exc))
        logger.warning("track %s: audio %s: %s", track.track_id, status, exc)
        return None
    key = audio_key(track.track_id)
    await resources.objects.put(key, audio.data, content_type=audio.content_type)
    stored = AudioStoredV1(
        track_id=track.track_id,
        object_key=key,
        sha256=audio.sha256,
        size=len(audio.data),
        audio_source=audio.audio_source,
        content_type=audio.content_type,
        stored_at=time.time(),
    )
    await tracks.set_status(track.track_id, "stored", audio_source=audio.audio_source)
    await audio_stored_topic.send(key=track.track_id.encode(), value=stored.dumps())
    return stored
