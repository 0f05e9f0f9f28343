"""``audio-stored.v1``: a track's audio is in the object store, ready for feature extraction."""

from __future__ import annotations

import faust


class AudioStoredV1(
    faust.Record,
    serializer="json",
    namespace="spotrec.audio_stored.v1",
    validation=True,
):
    """Where the audio of one track was stored, and where it came from."""

    track_id: str
    object_key: str
    sha256: str
    size: int
    #: Provenance: ``deezer:<id>``, ``url:<host>`` or ``file:<name>``.
    audio_source: str
    content_type: str = "application/octet-stream"
    stored_at: float = 0.0
