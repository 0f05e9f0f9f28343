"""The audio agent's work: store a discovered track's audio in S3 and announce it.

Reads a ``track-discovered.v1`` record; writes the track's metadata and status to Cassandra, its
audio to the object store under ``audio/<track id>`` (with its sha256 and provenance as object
metadata), and emits ``audio-stored.v1``. The steps (metadata, audio put, status ``stored``,
emit) are each idempotent, and a replayed record completes the missing ones: audio already
stored with its metadata is announced again rather than downloaded again.

A track without audio is recorded ``unavailable`` with the reason; one whose source failed for
now (timeouts, 5xx, a source unreachable after its bounded retries) is recorded ``failed`` and
handed to the retry schedule (``streams.schedule``). Tracks already settled (a vector of the
current model version, or no usable audio) are skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from functools import partial
from urllib.parse import quote, unquote

from schemas.audio import AudioStoredV1
from schemas.decoding import decode
from schemas.errors import InvalidRecord
from schemas.tracks import TrackDiscoveredV1, check_track
from sources.errors import AudioError, SourceError
from streams.handling import Parked, attempt_of
from streams.names import AUDIO_STORED
from streams.resources import Resources
from streams.schedule import schedule_retry

logger = logging.getLogger(__name__)

#: Per-track steps, in order, as the crash hook names them.
STEPS = ("audio.put", "audio.status", "audio.emit")


def audio_key(track_id: str) -> str:
    """The object-store key of a track's audio."""
    return "audio/" + quote(track_id, safe="")


async def handle_track(
    res: Resources,
    value: bytes,
    key: bytes | None = None,
    headers: Mapping[str, bytes] | Sequence[tuple[str, bytes]] | None = None,
) -> Parked | None:
    """Process one ``track-discovered.v1`` record: ``None`` when done, else why it never can be."""
    try:
        track = decode(TrackDiscoveredV1, value)
        check_track(track)
    except InvalidRecord as exc:
        return Parked(str(exc), exc)
    await store_track_audio(res, track, attempt=attempt_of(headers), key=key, payload=value)
    return None


async def store_track_audio(
    res: Resources,
    track: TrackDiscoveredV1,
    *,
    attempt: int = 0,
    key: bytes | None = None,
    payload: bytes | None = None,
) -> AudioStoredV1 | None:
    """Record the track, fetch and store its audio, and announce it; ``None`` if it has none now.

    Args:
        res: The worker's resources.
        track: The discovered track.
        attempt: Which scheduled try this is (0: not a retry).
        key: The record's key as received (the retry schedule re-sends it unchanged).
        payload: The record's value bytes as received (likewise); ``track.dumps()`` if omitted.
    """
    tracks, objects = res.tracks, res.objects
    track_id = track.track_id
    if await res.own("read a track's status", partial(tracks.settled, track_id, res.model_version)):
        return None
    await res.own("record a track", partial(tracks.upsert_discovered, track))
    object_key = audio_key(track_id)
    stored = await res.own("look for stored audio", partial(_already_stored, res, track_id))
    if stored is None:
        try:
            audio = await res.fetcher.fetch(track)
        except AudioError as exc:
            await res.own("record a track's status", partial(_unavailable, res, track_id, str(exc)))
            logger.info("track %s has no audio: %s", track_id, exc)
            return None
        except SourceError as exc:
            if not exc.retriable:
                await res.own(
                    "record a track's status", partial(_unavailable, res, track_id, str(exc))
                )
                logger.info("track %s has no audio: %s", track_id, exc)
                return None
            await schedule_retry(
                res,
                "track",
                track_id,
                key if key is not None else track_id.encode(),
                payload if payload is not None else track.dumps(),
                attempt,
                str(exc),
            )
            return None
        metadata = {"sha256": audio.sha256, "audio-source": quote(audio.audio_source, safe="")}
        put = partial(objects.put, object_key, audio.data, audio.content_type, metadata)
        await res.own("store audio", put)
        res.step_done("audio.put")
        stored = AudioStoredV1(
            track_id=track_id,
            object_key=object_key,
            sha256=audio.sha256,
            size=len(audio.data),
            audio_source=audio.audio_source,
            content_type=audio.content_type,
            stored_at=time.time(),
        )
    status = partial(tracks.set_status, track_id, "stored", audio_source=stored.audio_source)
    await res.own("record a track's status", status)
    res.step_done("audio.status")
    await res.emit(AUDIO_STORED, track_id.encode(), stored.dumps())
    res.step_done("audio.emit")
    return stored


async def _unavailable(res: Resources, track_id: str, reason: str) -> None:
    await res.tracks.set_status(track_id, "unavailable", error=reason)


async def _already_stored(res: Resources, track_id: str) -> AudioStoredV1 | None:
    """The announcement of audio a crashed try stored and did not announce, if it is there."""
    object_key = audio_key(track_id)
    head = await res.objects.head(object_key)
    if head is None:
        return None
    metadata = head["metadata"]
    sha256, source = metadata.get("sha256"), metadata.get("audio-source")
    if not sha256 or source is None or head["size"] <= 0:
        return None  # not stored by this agent (or by an older version): fetch it again
    return AudioStoredV1(
        track_id=track_id,
        object_key=object_key,
        sha256=sha256,
        size=head["size"],
        audio_source=unquote(source),
        content_type=head["content_type"] or "application/octet-stream",
        stored_at=time.time(),
    )
